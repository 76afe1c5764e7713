/**
 * Token buckets and the rate limiter over simulated time: a fake monotonic
 * clock the tests advance by hand, so every rate is checked exactly.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { RateLimiter, TokenBucket } from '../../src/vmm/rate_limiter/index.js';

class FakeClock {
  ms = 1000;
  readonly now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

// --------------------------------------------------------------------------- TokenBucket

test('a bucket starts full and refills linearly: size tokens per refill_time', () => {
  const clk = new FakeClock();
  const b = new TokenBucket({ size: 1000, one_time_burst: 0, refill_time: 1000 }, clk.now);
  assert.equal(b.budget, 1000);
  assert.equal(b.reduce(1000), 'ok');
  assert.equal(b.reduce(1), 'failure');
  clk.advance(100);
  assert.equal(b.budget, 100);
  assert.equal(b.reduce(101), 'failure');
  assert.equal(b.reduce(100), 'ok');
  clk.advance(250);
  assert.equal(b.budget, 250);
  clk.advance(5000); // capped at size
  assert.equal(b.budget, 1000);
});

test('fractions of a token carry over between refills', () => {
  const clk = new FakeClock();
  // 3 tokens per 10 ms: one token every 3.33 ms.
  const b = new TokenBucket({ size: 3, refill_time: 10 }, clk.now);
  assert.equal(b.reduce(3), 'ok');
  let got = 0;
  for (let i = 0; i < 100; i++) {
    clk.advance(1);
    if (b.reduce(1) === 'ok') got++;
  }
  assert.equal(got, 30, 'exactly 3 tokens per 10 ms over 100 ms of 1 ms steps');
});

test('time spent full earns nothing', () => {
  const clk = new FakeClock();
  const b = new TokenBucket({ size: 100, refill_time: 100 }, clk.now);
  clk.advance(10_000);
  assert.equal(b.reduce(100), 'ok');
  clk.advance(1);
  assert.equal(b.budget, 1, 'only the millisecond since the bucket was last full counts');
});

test('rate over simulated time matches size / refill_time', () => {
  const clk = new FakeClock();
  const b = new TokenBucket({ size: 10_000, refill_time: 100 }, clk.now); // 100 000 tokens/s
  let passed = 0;
  for (let t = 0; t < 10_000; t++) {
    // Greedy consumer: 1500-token requests, as often as they pass.
    while (b.reduce(1500) === 'ok') passed += 1500;
    clk.advance(1);
  }
  // 10 s: the initial 10 000 plus 10 s * 100 000/s, minus at most one request's worth.
  assert.ok(passed <= 10_000 + 1_000_000, `passed ${passed}`);
  assert.ok(passed >= 10_000 + 1_000_000 - 1500, `passed ${passed}`);
});

test('one_time_burst is spent first and never refilled', () => {
  const clk = new FakeClock();
  const b = new TokenBucket({ size: 100, one_time_burst: 250, refill_time: 1000 }, clk.now);
  assert.equal(b.reduce(200), 'ok');
  assert.equal(b.oneTimeBurst, 50);
  assert.equal(b.budget, 100, 'the budget is untouched while the burst lasts');
  assert.equal(b.reduce(80), 'ok'); // 50 from the burst, 30 from the budget
  assert.equal(b.oneTimeBurst, 0);
  assert.equal(b.budget, 70);
  clk.advance(10_000);
  assert.equal(b.oneTimeBurst, 0);
  assert.equal(b.budget, 100);
  assert.equal(b.initialOneTimeBurst, 250);
  assert.deepEqual(b.config, { size: 100, one_time_burst: 250, refill_time: 1000 });
});

test('a request larger than the bucket overconsumes once, when full, and leaves a debt', () => {
  const clk = new FakeClock();
  const b = new TokenBucket({ size: 100, refill_time: 100 }, clk.now); // 1 token/ms
  assert.equal(b.reduce(10), 'ok');
  assert.equal(b.reduce(250), 'failure', 'not while the bucket is not full');
  clk.advance(10);
  assert.equal(b.reduce(250), 'overconsumption');
  assert.equal(b.budget, -150);
  assert.equal(b.reduce(1), 'failure');
  assert.equal(b.reduce(250), 'failure');
  clk.advance(150);
  assert.equal(b.budget, 0);
  assert.equal(b.availableAtNs(100), BigInt((clk.ms + 100) * 1e6));
  clk.advance(100);
  assert.equal(b.reduce(250), 'overconsumption', 'again once full');
});

test('overconsumption with a one-time burst: the burst counts first', () => {
  const clk = new FakeClock();
  const b = new TokenBucket({ size: 100, one_time_burst: 50, refill_time: 100 }, clk.now);
  assert.equal(b.reduce(170), 'overconsumption');
  assert.equal(b.oneTimeBurst, 0);
  assert.equal(b.budget, -20);
});

test('forceReplenish refills the burst while it lasts, else the budget, within limits', () => {
  const clk = new FakeClock();
  const b = new TokenBucket({ size: 100, one_time_burst: 10, refill_time: 100 }, clk.now);
  b.reduce(5);
  b.forceReplenish(100);
  assert.equal(b.oneTimeBurst, 10);
  b.reduce(60);
  assert.equal(b.budget, 50);
  b.forceReplenish(20);
  assert.equal(b.budget, 70);
  b.forceReplenish(1000);
  assert.equal(b.budget, 100);
});

test('zero size or refill time means no bucket; bad values throw', () => {
  assert.equal(TokenBucket.fromConfig({ size: 0, refill_time: 100 }), null);
  assert.equal(TokenBucket.fromConfig({ size: 100, refill_time: 0 }), null);
  assert.throws(() => new TokenBucket({ size: 0, refill_time: 100 }), RangeError);
  assert.throws(() => new TokenBucket({ size: 1.5, refill_time: 100 }), RangeError);
  assert.throws(() => new TokenBucket({ size: 10, one_time_burst: -1, refill_time: 100 }), RangeError);
  assert.throws(() => new TokenBucket({ size: 10, refill_time: 100 }).reduce(-1), RangeError);
});

// --------------------------------------------------------------------------- RateLimiter

test('a refused consume blocks the limiter until the tokens are there', () => {
  const clk = new FakeClock();
  const rl = new RateLimiter({ bandwidth: { size: 1000, refill_time: 1000 } }, clk.now); // 1 byte/ms
  assert.equal(rl.isBlocked, false);
  assert.equal(rl.timerDueMs(), 0);
  assert.ok(rl.consume(900, 'bytes'));
  assert.equal(rl.consume(300, 'bytes'), false);
  assert.ok(rl.isBlocked);
  assert.equal(rl.timerDueMs(), 200);
  // As Firecracker: while blocked, everything is refused, even an unlimited token type.
  assert.equal(rl.consume(1, 'ops'), false);
  assert.equal(rl.consume(1, 'bytes'), false);
  clk.advance(150);
  assert.equal(rl.timerDueMs(), 50);
  assert.equal(rl.consume(1, 'bytes'), false);
  clk.advance(50);
  assert.equal(rl.isBlocked, false);
  assert.equal(rl.timerDueMs(), 0);
  assert.ok(rl.consume(300, 'bytes'), 'the refused request passes when due');
  assert.equal(rl.bandwidth!.budget, 0);
});

test('due times are exact, with fractions of a millisecond', () => {
  const clk = new FakeClock();
  const rl = new RateLimiter({ ops: { size: 3, refill_time: 10 } }, clk.now);
  for (let i = 0; i < 3; i++) assert.ok(rl.consume(1, 'ops'));
  assert.equal(rl.consume(1, 'ops'), false);
  assert.ok(Math.abs(rl.timerDueMs() - 10 / 3) < 1e-6, `${rl.timerDueMs()}`);
  clk.advance(rl.timerDueMs());
  assert.ok(rl.consume(1, 'ops'));
});

test('throughput of a limiter that retries when due matches the configured rate', () => {
  const clk = new FakeClock();
  // 1 MiB per 100 ms (10 MiB/s), 64 KiB requests, one op per request with 1000 ops/s.
  const rl = new RateLimiter({ bandwidth: { size: 1 << 20, refill_time: 100 }, ops: { size: 100, refill_time: 100 } }, clk.now);
  const start = clk.ms;
  let bytes = 0;
  let ops = 0;
  while (clk.ms - start < 2000) {
    if (rl.consume(1, 'ops')) {
      if (rl.consume(65536, 'bytes')) {
        bytes += 65536;
        ops++;
        continue;
      }
      rl.manualReplenish(1, 'ops'); // Firecracker's devices give the op back
    }
    clk.advance(Math.max(rl.timerDueMs(), 0.001));
  }
  // 2 s at 10 MiB/s plus the initial full bucket; bandwidth is the bottleneck (320 req/s < 1000 ops/s).
  const expected = (1 << 20) + 20 * (1 << 20);
  assert.ok(Math.abs(bytes - expected) <= 65536, `bytes ${bytes}, expected ~${expected}`);
  assert.equal(ops, bytes / 65536);
});

test('ops and bytes together: either bucket can refuse', () => {
  const clk = new FakeClock();
  const rl = new RateLimiter({ bandwidth: { size: 10_000, refill_time: 1000 }, ops: { size: 2, refill_time: 1000 } }, clk.now);
  assert.ok(rl.consume(1, 'ops') && rl.consume(100, 'bytes'));
  assert.ok(rl.consume(1, 'ops') && rl.consume(100, 'bytes'));
  assert.equal(rl.consume(1, 'ops'), false, 'out of ops with bytes left');
  assert.equal(rl.timerDueMs(), 500);
  clk.advance(500);
  assert.ok(rl.consume(1, 'ops'));
  assert.equal(rl.bandwidth!.budget, 10_000);

  // Now the bytes run out while ops are left.
  clk.advance(500);
  assert.ok(rl.consume(1, 'ops') && rl.consume(9_900, 'bytes'));
  clk.advance(500); // +1 op, +5 000 bytes
  assert.ok(rl.consume(1, 'ops'));
  assert.equal(rl.consume(6_000, 'bytes'), false);
  rl.manualReplenish(1, 'ops');
  assert.equal(rl.ops!.budget, 1);
  assert.equal(rl.timerDueMs(), 90, '900 more bytes at 10 bytes/ms');
  clk.advance(90);
  assert.ok(rl.consume(1, 'ops') && rl.consume(6_000, 'bytes'));
});

test('an oversized request passes once and blocks the limiter while the debt is refilled', () => {
  const clk = new FakeClock();
  const rl = new RateLimiter({ bandwidth: { size: 1000, refill_time: 100 } }, clk.now); // 10 bytes/ms
  assert.ok(rl.consume(3000, 'bytes'), 'overconsumption passes');
  assert.ok(rl.isBlocked);
  assert.equal(rl.timerDueMs(), 200, 'Firecracker: (3000 - 1000) / 1000 * refill_time');
  assert.equal(rl.consume(1, 'bytes'), false);
  clk.advance(200);
  assert.equal(rl.isBlocked, false);
  assert.equal(rl.bandwidth!.budget, 0);
  // The next oversized request waits for a full bucket, then passes.
  assert.equal(rl.consume(3000, 'bytes'), false);
  assert.equal(rl.timerDueMs(), 100);
  clk.advance(100);
  assert.ok(rl.consume(3000, 'bytes'));
  // Long run: 3000-byte requests at exactly 10 bytes/ms.
  const start = clk.ms;
  let bytes = 0;
  while (clk.ms - start < 10_000) {
    if (rl.consume(3000, 'bytes')) bytes += 3000;
    else clk.advance(rl.timerDueMs());
  }
  assert.ok(Math.abs(bytes - 100_000) <= 3000, `bytes ${bytes}`);
});

test('one_time_burst through the limiter', () => {
  const clk = new FakeClock();
  const rl = new RateLimiter({ bandwidth: { size: 100, one_time_burst: 1000, refill_time: 1000 } }, clk.now);
  let passed = 0;
  while (rl.consume(10, 'bytes')) passed += 10;
  assert.equal(passed, 1100, 'burst plus the full bucket');
  assert.equal(rl.timerDueMs(), 100);
  clk.advance(60_000);
  passed = 0;
  while (rl.consume(10, 'bytes')) passed += 10;
  assert.equal(passed, 100, 'the burst is gone for good');
});

test('no buckets, null buckets and zero-size buckets limit nothing', () => {
  const clk = new FakeClock();
  for (const rl of [
    new RateLimiter({}, clk.now),
    new RateLimiter({ bandwidth: null, ops: null }, clk.now),
    new RateLimiter({ bandwidth: { size: 0, one_time_burst: null, refill_time: 100 }, ops: { size: 100, refill_time: 0 } }, clk.now),
  ]) {
    assert.equal(rl.enabled, false);
    assert.equal(rl.bandwidth, null);
    assert.equal(rl.ops, null);
    for (let i = 0; i < 1000; i++) assert.ok(rl.consume(Number.MAX_SAFE_INTEGER, 'bytes') && rl.consume(1e9, 'ops'));
    assert.equal(rl.isBlocked, false);
    rl.manualReplenish(5, 'bytes');
    assert.deepEqual(rl.config, { bandwidth: null, ops: null });
  }
});

test('updateBuckets: undefined/null keep, zero config disables, a config replaces with a full bucket', () => {
  const clk = new FakeClock();
  const rl = new RateLimiter({ bandwidth: { size: 1000, refill_time: 1000 }, ops: { size: 10, refill_time: 1000 } }, clk.now);
  assert.ok(rl.consume(1000, 'bytes'));
  assert.ok(rl.consume(5, 'ops'));
  const ops = rl.ops;

  rl.updateBuckets(undefined, null);
  assert.equal(rl.ops, ops, 'same ops bucket');
  assert.equal(rl.ops!.budget, 5, 'state kept');
  assert.equal(rl.consume(1, 'bytes'), false);
  assert.ok(rl.isBlocked);

  // Replace bandwidth: new limits, full, and the limiter is unblocked.
  rl.updateBuckets({ size: 5000, one_time_burst: null, refill_time: 500 });
  assert.equal(rl.isBlocked, false);
  assert.deepEqual(rl.config, {
    bandwidth: { size: 5000, one_time_burst: null, refill_time: 500 },
    ops: { size: 10, one_time_burst: null, refill_time: 1000 },
  });
  assert.ok(rl.consume(5000, 'bytes'));
  assert.equal(rl.consume(1, 'bytes'), false);
  assert.equal(rl.timerDueMs(), 0.1, '5000 bytes per 500 ms: one byte every 0.1 ms');

  // Disable ops with a zero config; bandwidth untouched.
  const bw = rl.bandwidth;
  rl.updateBuckets(null, { size: 0, refill_time: 0 });
  assert.equal(rl.ops, null);
  assert.equal(rl.bandwidth, bw);
  for (let i = 0; i < 100; i++) assert.ok(rl.consume(1, 'ops'));

  // Disable bandwidth too (zero size with a refill time still disables), then re-enable ops.
  rl.updateBuckets({ size: 0, refill_time: 100 }, { size: 1, one_time_burst: 2, refill_time: 1000 });
  assert.equal(rl.bandwidth, null);
  assert.ok(rl.consume(1e12, 'bytes'));
  assert.ok(rl.consume(1, 'ops') && rl.consume(1, 'ops') && rl.consume(1, 'ops'));
  assert.equal(rl.consume(1, 'ops'), false);
});

test('the default clock is monotonic and real', async () => {
  const rl = new RateLimiter({ ops: { size: 1, refill_time: 20 } });
  assert.ok(rl.consume(1, 'ops'));
  assert.equal(rl.consume(1, 'ops'), false);
  const due = rl.timerDueMs();
  assert.ok(due > 0 && due <= 20, `${due}`);
  await new Promise((r) => setTimeout(r, due + 2));
  assert.ok(rl.consume(1, 'ops'));
});
