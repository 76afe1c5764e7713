/**
 * The host's end of Firecracker's vsock Unix-socket protocol, for the lab
 * vsock test (tests/lab/net_vsock.sh):
 *
 *   node vsock_peer.js serve SOCK LOG
 *     Listens on the Unix socket SOCK (the VMM connects to `<uds_path>_<port>`
 *     when the guest connects to CID 2 on <port>). Per connection: reads one
 *     line, answers `echo:<line>\n`, closes. Appends `listening`, `accepted`,
 *     `line=<line>`, `replied` lines to LOG. Runs until SIGTERM.
 *
 *   node vsock_peer.js connect UDS PORT MSG TIMEOUT_S
 *     Host-initiated connection: connects to the VMM's UDS, writes
 *     `CONNECT <PORT>\n`, expects `OK <hostport>\n`, sends `MSG\n` and reads the
 *     reply line. Until the guest listens the VMM refuses (closes the stream),
 *     so it retries every 500 ms for TIMEOUT_S seconds. Prints one line per
 *     failed attempt and a final `host-connect ok ...` or `host-connect failed ...`
 *     line; exit status 0 on success, 1 otherwise.
 */
import fs from 'node:fs';
import net from 'node:net';

function usage(): never {
  process.stderr.write('usage: vsock_peer.js serve SOCK LOG | connect UDS PORT MSG TIMEOUT_S\n');
  process.exit(64);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Collects a stream's bytes and hands out complete lines (without the '\n'). */
class LineReader {
  private buf = '';
  private waiting: ((line: string | Error) => void) | undefined;
  private ended: Error | undefined;

  constructor(private readonly sock: net.Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      this.flush();
    });
    sock.on('end', () => this.fail(new Error('the peer closed the stream')));
    sock.on('close', () => this.fail(new Error('the stream was closed')));
    sock.on('error', (e) => this.fail(e));
  }

  private fail(e: Error): void {
    this.ended ??= e;
    this.flush();
  }

  private flush(): void {
    if (!this.waiting) return;
    const nl = this.buf.indexOf('\n');
    if (nl >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      const w = this.waiting;
      this.waiting = undefined;
      w(line);
    } else if (this.ended) {
      const w = this.waiting;
      this.waiting = undefined;
      w(new Error(`${this.ended.message}${this.buf ? ` (after partial line ${JSON.stringify(this.buf)})` : ''}`));
    }
  }

  /** The next line, or a rejection when the stream ends first or `ms` pass. */
  line(ms: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`no line within ${ms} ms${this.buf ? ` (partial ${JSON.stringify(this.buf)})` : ''}`));
      }, ms);
      this.waiting = (l) => {
        clearTimeout(timer);
        if (l instanceof Error) reject(l);
        else resolve(l);
      };
      this.flush();
    });
  }
}

function serve(sockPath: string, logPath: string): void {
  const log = (s: string) => fs.appendFileSync(logPath, `${new Date().toISOString()} ${s}\n`);
  fs.rmSync(sockPath, { force: true });
  const server = net.createServer((sock) => {
    log('accepted');
    const lines = new LineReader(sock);
    lines.line(60_000).then(
      (line) => {
        log(`line=${line}`);
        sock.end(`echo:${line}\n`, () => log('replied'));
      },
      (e: Error) => {
        log(`error=${e.message}`);
        sock.destroy();
      },
    );
  });
  server.on('error', (e) => {
    log(`server-error=${e.message}`);
    process.exit(1);
  });
  server.listen(sockPath, () => log(`listening ${sockPath}`));
  process.on('SIGTERM', () => {
    log('stopping');
    server.close();
    fs.rmSync(sockPath, { force: true });
    process.exit(0);
  });
}

async function attempt(uds: string, port: number, msg: string): Promise<{ ok: string; reply: string }> {
  const sock = net.createConnection(uds);
  const lines = new LineReader(sock);
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    sock.write(`CONNECT ${port}\n`);
    const ok = await lines.line(10_000);
    if (!/^OK \d+$/.test(ok)) throw new Error(`expected "OK <hostport>", got ${JSON.stringify(ok)}`);
    sock.write(`${msg}\n`);
    const reply = await lines.line(20_000);
    return { ok, reply };
  } finally {
    sock.destroy();
  }
}

async function connect(uds: string, port: number, msg: string, timeoutS: number): Promise<void> {
  const t0 = Date.now();
  let attempts = 0;
  let last = '';
  while (Date.now() - t0 < timeoutS * 1000) {
    attempts++;
    try {
      const { ok, reply } = await attempt(uds, port, msg);
      process.stdout.write(`host-connect ok attempts=${attempts} ok_line="${ok}" reply=${reply} after_ms=${Date.now() - t0}\n`);
      return;
    } catch (e) {
      const m = (e as Error).message;
      // Only log changes, so a long wait for the guest stays readable.
      if (m !== last) process.stdout.write(`attempt ${attempts} at ${Date.now() - t0} ms: ${m}\n`);
      last = m;
    }
    await sleep(500);
  }
  process.stdout.write(`host-connect failed attempts=${attempts} last=${last}\n`);
  process.exitCode = 1;
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'serve' && args.length === 2) {
  serve(args[0]!, args[1]!);
} else if (mode === 'connect' && args.length === 4) {
  await connect(args[0]!, Number(args[1]), args[2]!, Number(args[3]));
} else {
  usage();
}
