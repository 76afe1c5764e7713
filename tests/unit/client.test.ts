/** The API client against a throwaway node:http server on a temporary Unix socket. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiConnectionError, ApiError, ApiResponseError, ApiTimeoutError, Client, ClientError } from '../../src/index.js';
import { startFakeApi, type FakeApi, type FakeReply, type RecordedRequest } from '../helpers/fake_api_server.js';

const INFO = { app_name: 'sparkler', id: 'vm0', state: 'Not started', vmm_version: '0.1.0' };

describe('API client', () => {
  let api: FakeApi;
  /** What the fake server answers next (reset to 204 after each request). */
  let next: (req: RecordedRequest) => FakeReply | undefined = () => undefined;

  before(async () => {
    api = await startFakeApi((req) => {
      const reply = next(req);
      next = () => undefined;
      return reply;
    });
  });
  after(() => api.close());

  const last = (): RecordedRequest => api.requests.at(-1)!;

  it('GET: sends no body, parses the JSON answer', async () => {
    next = () => ({ status: 200, body: INFO });
    const info = await new Client({ socketPath: api.socketPath }).describeInstance();
    assert.deepEqual(info, INFO);
    assert.equal(last().method, 'GET');
    assert.equal(last().url, '/');
    assert.equal(last().body, '');
    assert.equal(last().headers.accept, 'application/json');
  });

  it('PUT: sends the JSON body with its headers, resolves to undefined on 204', async () => {
    const c = new Client({ socketPath: api.socketPath });
    const body = { vcpu_count: 2, mem_size_mib: 256 };
    assert.equal(await c.putMachineConfig(body), undefined);
    assert.equal(last().method, 'PUT');
    assert.equal(last().url, '/machine-config');
    assert.deepEqual(JSON.parse(last().body), body);
    assert.equal(last().headers['content-type'], 'application/json');
    assert.equal(last().headers['content-length'], String(Buffer.byteLength(last().body)));
  });

  it('PATCH and the conveniences', async () => {
    const c = new Client({ socketPath: api.socketPath });
    await c.patchMachineConfig({ vcpu_count: 4 });
    assert.deepEqual([last().method, last().url, JSON.parse(last().body)], ['PATCH', '/machine-config', { vcpu_count: 4 }]);
    await c.startInstance();
    assert.deepEqual([last().method, last().url, JSON.parse(last().body)], ['PUT', '/actions', { action_type: 'InstanceStart' }]);
    await c.pause();
    assert.deepEqual([last().method, last().url, JSON.parse(last().body)], ['PATCH', '/vm', { state: 'Paused' }]);
    await c.stopBalloonHinting();
    assert.deepEqual([last().method, last().url, last().body], ['PATCH', '/balloon/hinting/stop', '']);
  });

  it('by-id endpoints take the id from the body (URL-encoded), or from options', async () => {
    const c = new Client({ socketPath: api.socketPath });
    await c.putDrive({ drive_id: 'root/fs', path_on_host: '/r', is_root_device: true, is_read_only: false });
    assert.equal(last().url, '/drives/root%2Ffs');
    await c.putNetworkInterface({ iface_id: 'eth0', host_dev_name: 'tap0' }, { id: 'eth1' });
    assert.equal(last().url, '/network-interfaces/eth1');
    assert.equal(JSON.parse(last().body).iface_id, 'eth0');
    await assert.rejects(c.putPmem({ id: '', path_on_host: '/p' }), /missing path parameter id/);
  });

  it('400 → ApiError with statusCode, faultMessage, method and path', async () => {
    next = () => ({ status: 400, body: { fault_message: 'The kernel file cannot be opened' } });
    const c = new Client({ socketPath: api.socketPath });
    const err = await c.putBootSource({ kernel_image_path: '/nope' }).then(
      () => assert.fail('should have thrown'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ApiError);
    assert.ok(err instanceof ClientError);
    assert.equal(err.statusCode, 400);
    assert.equal(err.faultMessage, 'The kernel file cannot be opened');
    assert.equal(err.method, 'PUT');
    assert.equal(err.path, '/boot-source');
    assert.equal(err.message, 'PUT /boot-source failed: 400 Bad Request: The kernel file cannot be opened');
  });

  it('non-JSON error bodies become the faultMessage as they are', async () => {
    next = () => ({ status: 500, body: 'internal trouble' });
    const c = new Client({ socketPath: api.socketPath });
    await assert.rejects(c.getVersion(), (e: unknown) => {
      assert.ok(e instanceof ApiError);
      assert.equal(e.statusCode, 500);
      assert.equal(e.faultMessage, 'internal trouble');
      assert.equal(e.path, '/version');
      return true;
    });
  });

  it('a 200 answer that is not JSON → ApiResponseError naming the path', async () => {
    next = () => ({ status: 200, body: '{"firecracker_version": ' });
    await assert.rejects(new Client({ socketPath: api.socketPath }).getVersion(), (e: unknown) => {
      assert.ok(e instanceof ApiResponseError);
      assert.match(e.message, /^GET \/version: bad 200 response: invalid JSON/);
      return true;
    });
  });

  it('request(): any method/path/raw body, no throw on status', async () => {
    next = () => ({ status: 400, body: { fault_message: 'bad json' } });
    const res = await new Client({ socketPath: api.socketPath }).request('PUT', '/machine-config', '{"vcpu_count":');
    assert.equal(last().body, '{"vcpu_count":');
    assert.equal(res.statusCode, 400);
    assert.deepEqual(res.json, { fault_message: 'bad json' });
  });

  it('times out with an error naming the path', async () => {
    next = () => ({ hang: true });
    const c = new Client({ socketPath: api.socketPath, timeoutMs: 150 });
    const t0 = Date.now();
    await assert.rejects(c.getMachineConfig(), (e: unknown) => {
      assert.ok(e instanceof ApiTimeoutError);
      assert.equal(e.path, '/machine-config');
      assert.equal(e.timeoutMs, 150);
      assert.match(e.message, /^GET \/machine-config timed out after 150 ms/);
      return true;
    });
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 140 && elapsed < 5000, `took ${elapsed} ms`);
    // A per-call timeout overrides the client's.
    next = () => ({ hang: true });
    await assert.rejects(c.getMachineConfig({ timeoutMs: 50 }), /timed out after 50 ms/);
  });

  it('keepAlive reuses one connection', async () => {
    const c = new Client({ socketPath: api.socketPath, keepAlive: true });
    try {
      next = () => ({ status: 200, body: INFO });
      await c.describeInstance();
      await c.flushMetrics();
      assert.equal(last().headers.connection, 'keep-alive');
    } finally {
      c.close();
    }
  });
});

describe('API client: unreachable socket', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-client-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('ENOENT → ApiConnectionError naming the socket path', async () => {
    const socketPath = path.join(dir, 'missing.sock');
    await assert.rejects(new Client({ socketPath }).describeInstance(), (e: unknown) => {
      assert.ok(e instanceof ApiConnectionError);
      assert.equal(e.code, 'ENOENT');
      assert.equal(e.socketPath, socketPath);
      assert.ok(e.message.includes(socketPath), e.message);
      assert.match(e.message, /^GET \/: cannot talk to the API socket .*: no such socket \(ENOENT\)$/);
      return true;
    });
  });

  it('nothing listening → ApiConnectionError (ECONNREFUSED)', async () => {
    const socketPath = path.join(dir, 'stale.sock');
    fs.writeFileSync(socketPath, ''); // not a listening socket
    await assert.rejects(new Client({ socketPath }).getVersion(), (e: unknown) => {
      assert.ok(e instanceof ApiConnectionError);
      assert.equal(e.code, 'ECONNREFUSED');
      assert.ok(e.message.includes(socketPath), e.message);
      return true;
    });
  });
});
