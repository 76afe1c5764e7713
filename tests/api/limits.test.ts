/**
 * The API server's limits, black box: --http-api-max-payload-size (refused
 * without reading the whole body), slow and half-sent requests, many
 * connections, and a long keep-alive connection. Every answer is validated
 * against the spec.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startApi, validateAnswer, type ApiProcess, type RawConnection } from '../helpers/api_process.js';
import { validateRequest } from '../helpers/openapi.js';

const DEFAULT_LIMIT = 51200;

/** A valid PUT /machine-config body of exactly `size` bytes (padded with spaces inside the object). */
function machineConfigOfSize(size: number, mem = 64): string {
  const base = `{"vcpu_count":1,"mem_size_mib":${mem}}`;
  assert.ok(size >= base.length);
  return `${base.slice(0, -1)}${' '.repeat(size - base.length)}}`;
}

async function assertServing(vmm: ApiProcess, what: string): Promise<void> {
  const r = await vmm.request('GET', '/', undefined, { timeoutMs: 2000 }).catch((e: Error) => {
    throw new Error(`GET / failed ${what}: ${e.message}`);
  });
  assert.equal(r.status, 200, `GET / ${what}`);
}

function faultMessage(json: unknown): string {
  const f = (json as { fault_message?: unknown } | undefined)?.fault_message;
  assert.equal(typeof f, 'string', `no fault_message in ${JSON.stringify(json)}`);
  return f as string;
}

/** Sends a PUT with a declared Content-Length far beyond the limit and only `sent` bytes of body; returns the answer. */
async function oversizedDeclared(vmm: ApiProcess, declared: number, sent: number): Promise<{ status: number; message: string; elapsedMs: number; conn: RawConnection }> {
  const conn = await vmm.connectRaw();
  const started = performance.now();
  await conn.write(
    `PUT /machine-config HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${declared}\r\n\r\n` +
      '{"vcpu_count": 1, "mem_size_mib": 64' +
      ' '.repeat(Math.max(0, sent - 36)),
  );
  // The rest of the body never comes: the answer must come anyway.
  const r = await conn.readResponse(3000);
  const elapsedMs = performance.now() - started;
  validateAnswer('PUT', '/machine-config', r);
  return { status: r.status, message: faultMessage(r.json), elapsedMs, conn };
}

describe(`payload limit: default (${DEFAULT_LIMIT} bytes)`, () => {
  let vmm: ApiProcess;
  before(async () => {
    vmm = await startApi();
  });
  after(async () => {
    await vmm?.stop();
  });

  it(`accepts a body of exactly ${DEFAULT_LIMIT} bytes`, async () => {
    const r = await vmm.request('PUT', '/machine-config', machineConfigOfSize(DEFAULT_LIMIT));
    assert.equal(r.status, 204, r.text);
  });

  it(`refuses a body of ${DEFAULT_LIMIT + 1} bytes with a message naming the limit`, async () => {
    const r = await vmm.request('PUT', '/machine-config', machineConfigOfSize(DEFAULT_LIMIT + 1));
    assert.equal(r.status, 400);
    const msg = faultMessage(r.json);
    assert.match(msg, new RegExp(`\\b${DEFAULT_LIMIT}\\b`), 'the message names the limit');
    assert.match(msg, new RegExp(`\\b${DEFAULT_LIMIT + 1}\\b`), 'the message names the size');
    assert.match(msg, /larger than the limit/i);
    await assertServing(vmm, 'after an oversized body');
  });

  it('answers a huge declared Content-Length without waiting for the body', async () => {
    const { status, message, elapsedMs, conn } = await oversizedDeclared(vmm, 1 << 30, 1000);
    try {
      assert.equal(status, 400);
      assert.match(message, new RegExp(`size ${1 << 30}\\b.*limit of ${DEFAULT_LIMIT}\\b`));
      assert.ok(elapsedMs < 2000, `answered after ${Math.round(elapsedMs)} ms`);
      // The body was not read: the server does not keep the connection for it.
      await conn.waitClosed(3000);
    } finally {
      conn.close();
    }
    await assertServing(vmm, 'after a huge declared Content-Length');
  });

  it('refuses an oversized chunked body (no Content-Length) with a message naming the limit', async () => {
    const conn = await vmm.connectRaw();
    try {
      await conn.write('PUT /machine-config HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
      const chunk = ' '.repeat(16 * 1024);
      for (let i = 0; i < 4; i++) await conn.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
      // No final chunk: the server must answer once it has seen more than the limit.
      const r = await conn.readResponse(3000);
      validateAnswer('PUT', '/machine-config', r);
      assert.equal(r.status, 400);
      assert.match(faultMessage(r.json), new RegExp(`limit of ${DEFAULT_LIMIT}\\b`));
    } finally {
      conn.close();
    }
    await assertServing(vmm, 'after an oversized chunked body');
  });
});

describe('payload limit: --http-api-max-payload-size 100', () => {
  let vmm: ApiProcess;
  before(async () => {
    vmm = await startApi({ args: ['--http-api-max-payload-size', '100'] });
  });
  after(async () => {
    await vmm?.stop();
  });

  it('accepts a 100-byte body', async () => {
    const r = await vmm.request('PUT', '/machine-config', machineConfigOfSize(100));
    assert.equal(r.status, 204, r.text);
  });

  it('refuses a 101-byte body with a message naming the limit', async () => {
    const r = await vmm.request('PUT', '/machine-config', machineConfigOfSize(101));
    assert.equal(r.status, 400);
    assert.match(faultMessage(r.json), /size 101\b.*limit of 100\b/);
    await assertServing(vmm, 'after a 101-byte body');
  });

  it('refuses a body below the default limit but above this one', async () => {
    const r = await vmm.request('PUT', '/boot-source', { kernel_image_path: `/${'k'.repeat(2000)}` });
    assert.equal(r.status, 400);
    assert.match(faultMessage(r.json), /limit of 100\b/);
  });

  it('answers a declared Content-Length over the limit with only part of the body sent', async () => {
    const { status, message, elapsedMs, conn } = await oversizedDeclared(vmm, 5000, 60);
    conn.close();
    assert.equal(status, 400);
    assert.match(message, /size 5000\b.*limit of 100\b/);
    assert.ok(elapsedMs < 2000, `answered after ${Math.round(elapsedMs)} ms`);
    await assertServing(vmm, 'after a partial oversized body');
  });

  it('still serves bodiless requests and small bodies', async () => {
    assert.equal((await vmm.request('GET', '/machine-config')).status, 200);
    assert.equal((await vmm.request('PUT', '/actions', { action_type: 'FlushMetrics' })).status, 400);
  });
});

describe('slow, half-sent and many connections', () => {
  let vmm: ApiProcess;
  const held: RawConnection[] = [];
  before(async () => {
    vmm = await startApi();
  });
  after(async () => {
    for (const c of held) c.close();
    await vmm?.stop();
  });

  it('a half-sent request and 50 open connections do not keep GET / from answering within 1 s', async () => {
    // Headers never finished.
    const headersOnly = await vmm.connectRaw();
    held.push(headersOnly);
    await headersOnly.write('PUT /machine-config HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Le');
    // Headers complete, body half sent.
    const halfBody = await vmm.connectRaw();
    held.push(halfBody);
    const body = JSON.stringify({ vcpu_count: 2, mem_size_mib: 96 });
    validateRequest('PUT', '/machine-config', body);
    await halfBody.write(`PUT /machine-config HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`);
    // 50 more: half of them idle, half with a partial request line.
    const many = await Promise.all(Array.from({ length: 50 }, () => vmm.connectRaw()));
    held.push(...many);
    await Promise.all(many.filter((_, i) => i % 2 === 1).map((c) => c.write('GET / HT')));

    const t0 = performance.now();
    const r = await vmm.request('GET', '/', undefined, { timeoutMs: 1000 });
    const ms = performance.now() - t0;
    assert.equal(r.status, 200);
    assert.ok(ms < 1000, `GET / took ${Math.round(ms)} ms`);

    // 50 concurrent GET / on fresh connections, all answered within 1 s.
    const t1 = performance.now();
    const answers = await Promise.all(Array.from({ length: 50 }, () => vmm.request('GET', '/', undefined, { timeoutMs: 1000 })));
    const ms50 = performance.now() - t1;
    assert.deepEqual(answers.map((a) => a.status), Array(50).fill(200));
    assert.ok(ms50 < 1000, `50 concurrent GET / took ${Math.round(ms50)} ms`);

    // The half-sent request was only waiting: finishing it gets its answer.
    await halfBody.write(body.slice(10));
    const done = await halfBody.readResponse(2000);
    validateAnswer('PUT', '/machine-config', done);
    assert.equal(done.status, 204, done.text);
    const mc = await vmm.request('GET', '/machine-config');
    assert.equal((mc.json as { mem_size_mib: number }).mem_size_mib, 96);
  });
});

describe('keep-alive', () => {
  let vmm: ApiProcess;
  before(async () => {
    vmm = await startApi();
  });
  after(async () => {
    await vmm?.stop();
  });

  it('200 sequential requests on one connection, errors included, all answered in order', async () => {
    const conn = await vmm.connectRaw();
    try {
      for (let i = 0; i < 200; i++) {
        let method: string;
        let path: string;
        let body: string | undefined;
        let malformed = false;
        switch (i % 4) {
          case 0:
            [method, path] = ['GET', '/'];
            break;
          case 1:
            [method, path, body] = ['PUT', '/machine-config', JSON.stringify({ vcpu_count: 1, mem_size_mib: 64 + i })];
            break;
          case 2:
            [method, path] = ['GET', '/machine-config'];
            break;
          default:
            [method, path, body, malformed] = ['PUT', '/machine-config', '{"vcpu_count": ', true];
        }
        if (!malformed) validateRequest(method, path, body);
        await conn.sendRequest(method, path, body);
        const r = await conn.readResponse(2000).catch((e: Error) => {
          throw new Error(`request #${i} (${method} ${path}): ${e.message}`);
        });
        validateAnswer(method, path, r);
        const expected = i % 4 === 0 || i % 4 === 2 ? 200 : i % 4 === 1 ? 204 : 400;
        assert.equal(r.status, expected, `request #${i} ${method} ${path}: ${r.text}`);
        if (i % 4 === 2) assert.equal((r.json as { mem_size_mib: number }).mem_size_mib, 64 + i - 1, `request #${i}: answers out of order`);
        assert.ok(!/close/i.test(String(r.headers.connection ?? '')), `request #${i}: the server asked to close the connection`);
      }
      assert.equal(conn.isClosed, false, 'the connection was closed');
    } finally {
      conn.close();
    }
  });
});
