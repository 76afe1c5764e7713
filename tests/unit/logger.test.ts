/**
 * The logger: Firecracker's line format under each flag combination, level
 * filtering, per-call-site rate limiting, and files/FIFOs as targets.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { parseLevelFilter } from '../../src/logger/levels.js';
import { logger as singleton, Logger, LoggerConfigError, type LoggerDeps } from '../../src/logger/logger.js';
import { CallSiteRateLimiter } from '../../src/logger/rate_limit.js';
import { formatLocalTimestamp } from '../../src/logger/timestamp.js';

let dir = '';
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-logger-'));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** 2024-05-06 12:34:56.123 local time, plus 0.25 ms (exact in binary). */
const FIXED_WALL = new Date(2024, 4, 6, 12, 34, 56, 123).getTime() + 0.25;
const FIXED_STAMP = '2024-05-06T12:34:56.123250000';

let counter = 0;
/** A logger writing to a fresh file in the temp dir; returns it and a reader. */
function fileLogger(deps: LoggerDeps = {}): { log: Logger; read: () => string; file: string } {
  const file = path.join(dir, `log-${counter++}.txt`);
  const log = new Logger({ wallClockMs: () => FIXED_WALL, ...deps });
  log.configure({ path: file });
  return { log, file, read: () => fs.readFileSync(file, 'utf8') };
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

describe('line format', () => {
  it('prints the timestamp as Firecracker does (local time, 9-digit fraction)', () => {
    assert.equal(formatLocalTimestamp(FIXED_WALL), FIXED_STAMP);
    assert.equal(formatLocalTimestamp(new Date(2024, 0, 2, 3, 4, 5, 6).getTime()), '2024-01-02T03:04:05.006000000');
  });

  it('is "<time> [<id>:<thread>] <msg>" by default', () => {
    const { log, read } = fileLogger();
    log.info('hello');
    assert.equal(read(), `${FIXED_STAMP} [anonymous-instance:main] hello\n`);
    log.close();
  });

  it('adds the level with showLevel (log crate names: WARN, not WARNING)', () => {
    const { log, read } = fileLogger();
    log.configure({ showLevel: true, instanceId: 'vm-1' });
    log.warn('careful');
    log.error('broken');
    assert.deepEqual(lines(read()), [
      `${FIXED_STAMP} [vm-1:main:WARN] careful`,
      `${FIXED_STAMP} [vm-1:main:ERROR] broken`,
    ]);
    log.close();
  });

  it('adds file:line of the caller with showOrigin', () => {
    const { log, read } = fileLogger();
    log.configure({ showOrigin: true });
    log.info('from here');
    const m = /^\S+ \[anonymous-instance:main:([^:\]]+):(\d+)\] from here$/.exec(lines(read())[0]!);
    assert.ok(m, read());
    assert.match(m[1]!, /tests[/\\]unit[/\\]logger\.test\.(js|ts)$/);
    assert.ok(Number(m[2]) > 0);
    log.close();
  });

  it('puts level before origin when both are shown', () => {
    const { log, read } = fileLogger();
    log.configure({ showLevel: true, showOrigin: true, threadName: 'fc_vcpu 0' });
    log.debug('not shown at Info');
    log.info('both');
    assert.match(read(), /^\S+ \[anonymous-instance:fc_vcpu 0:INFO:[^:\]]*logger\.test\.(js|ts):\d+\] both\n$/);
    log.close();
  });

  it('works when the methods are detached from the logger', () => {
    const { log, read } = fileLogger();
    const { info } = log;
    info('detached');
    assert.match(read(), /\] detached\n$/);
    log.close();
  });
});

describe('level filtering', () => {
  function emitAll(log: Logger): void {
    log.error('e');
    log.warn('w');
    log.info('i');
    log.debug('d');
    log.trace('t');
  }
  const cases = [
    ['Off', ''],
    ['Error', 'e'],
    ['Warning', 'ew'],
    ['Info', 'ewi'],
    ['Debug', 'ewid'],
    ['Trace', 'ewidt'],
  ] as const;
  for (const [level, expected] of cases) {
    it(`at ${level} prints "${expected}"`, () => {
      const { log, read } = fileLogger();
      log.configure({ level });
      emitAll(log);
      assert.equal(
        lines(read())
          .map((l) => l.slice(-1))
          .join(''),
        expected,
      );
      log.close();
    });
  }

  it('defaults to Info, like Firecracker', () => {
    const log = new Logger();
    assert.equal(log.currentLevel, 'Info');
    assert.equal(log.isEnabled('Info'), true);
    assert.equal(log.isEnabled('Debug'), false);
  });

  it('parses level names case-insensitively, with warn as an alias', () => {
    assert.equal(parseLevelFilter('WARN'), 'Warning');
    assert.equal(parseLevelFilter('Warning'), 'Warning');
    assert.equal(parseLevelFilter('oFF'), 'Off');
    assert.equal(parseLevelFilter('verbose'), undefined);
  });

  it('filters by module path with the module option', () => {
    const { log, read } = fileLogger();
    log.configure({ module: 'vmm::devices' });
    log.info('dropped: this test is not under vmm::devices');
    log.configure({ module: 'tests::unit' });
    log.info('kept');
    assert.deepEqual(
      lines(read()).map((l) => l.replace(/^.*\] /, '')),
      ['kept'],
    );
    log.close();
  });
});

describe('rate limiting', () => {
  it('lets a burst of 10 through per call site, then one per 500 ms, and reports the drops', () => {
    let now = 1000;
    const { log, read } = fileLogger({ monotonicMs: () => now });
    const flood = (msg: string) => log.warn(msg); // one call site
    for (let i = 0; i < 15; i++) flood(`flood ${i}`);
    assert.equal(lines(read()).length, 10);
    assert.equal(log.stats.rateLimitedLogCount, 5);

    log.error('another call site is not affected');
    assert.equal(lines(read()).length, 11);

    now += 499;
    flood('too early');
    assert.equal(log.stats.rateLimitedLogCount, 6);
    assert.equal(lines(read()).length, 11);

    now += 1;
    flood('one more token');
    const tail = lines(read())
      .slice(-2)
      .map((l) => l.replace(/^.*\] /, ''));
    assert.deepEqual(tail, ['6 messages were suppressed due to rate limiting', 'one more token']);
    log.close();
  });

  it('does not limit debug, trace or the unrestricted variants', () => {
    const { log, read } = fileLogger({ monotonicMs: () => 0 });
    log.configure({ level: 'Trace' });
    for (let i = 0; i < 30; i++) log.debug('d');
    for (let i = 0; i < 30; i++) log.trace('t');
    for (let i = 0; i < 30; i++) log.errorUnrestricted('e');
    for (let i = 0; i < 30; i++) log.warnUnrestricted('w');
    for (let i = 0; i < 30; i++) log.infoUnrestricted('i');
    assert.equal(lines(read()).length, 150);
    assert.equal(log.stats.rateLimitedLogCount, 0);
    log.close();
  });

  it('limiter: GCRA bucket of 10 refilled over 5 s', () => {
    const rl = new CallSiteRateLimiter();
    const allowed = (t: number) => rl.check('k', t).allowed;
    for (let i = 0; i < 10; i++) assert.equal(allowed(0), true, `burst ${i}`);
    assert.equal(allowed(0), false);
    assert.equal(allowed(499), false);
    assert.deepEqual(rl.check('k', 500), { allowed: true, suppressedBefore: 2 });
    assert.equal(allowed(500), false);
    // After a full refill period the whole burst is available again.
    for (let i = 0; i < 10; i++) assert.equal(allowed(10_000), true);
    assert.equal(rl.check('other', 10_000).allowed, true);
    assert.equal(rl.size, 2);
  });
});

describe('targets', () => {
  it('appends to an existing file', () => {
    const file = path.join(dir, 'existing.log');
    fs.writeFileSync(file, 'previous line\n');
    const log = new Logger({ wallClockMs: () => FIXED_WALL });
    log.configure({ path: file });
    log.info('new line');
    log.close();
    assert.equal(fs.readFileSync(file, 'utf8'), `previous line\n${FIXED_STAMP} [anonymous-instance:main] new line\n`);
  });

  it('refuses a path it cannot open and keeps the old target', () => {
    const { log, read } = fileLogger();
    assert.throws(
      () => log.configure({ path: path.join(dir, 'no-such-dir', 'x.log'), level: 'Trace' }),
      (err: unknown) => err instanceof LoggerConfigError && /^Failed to open target file: ENOENT/.test(err.message),
    );
    assert.equal(log.currentLevel, 'Info', 'a failed configure changes nothing');
    log.info('still here');
    assert.match(read(), /still here/);
    log.close();
  });

  it('writes to a FIFO without blocking, even before a reader, and drops lines when it is full', () => {
    const fifo = path.join(dir, 'log.fifo');
    execFileSync('mkfifo', [fifo]);
    const log = new Logger({ wallClockMs: () => FIXED_WALL });
    log.configure({ path: fifo }); // would hang here if opened write-only without a reader
    log.info('through the pipe');

    const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    try {
      const buf = Buffer.alloc(4096);
      const n = fs.readSync(reader, buf);
      assert.equal(buf.subarray(0, n).toString(), `${FIXED_STAMP} [anonymous-instance:main] through the pipe\n`);

      // Nobody drains it now: fill the pipe buffer (64 KiB by default).
      const long = 'x'.repeat(1000);
      for (let i = 0; i < 200; i++) log.infoUnrestricted(long);
      assert.ok(log.stats.missedLogCount > 0, 'a full pipe drops lines instead of blocking');
    } finally {
      fs.closeSync(reader);
      log.close();
    }
  });

  it('exports a process-wide logger with the Firecracker API', () => {
    for (const m of ['error', 'warn', 'info', 'debug', 'trace', 'configure'] as const) {
      assert.equal(typeof singleton[m], 'function');
    }
  });
});
