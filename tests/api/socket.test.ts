/**
 * The API socket path, black box: a second sparkler on a path in use refuses
 * to start and leaves the first one serving; a stale socket file (left by a
 * killed process) is replaced.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { makeTempDir, runSparklerArgs, startApi, type ApiProcess } from '../helpers/api_process.js';
import { hasStackTrace } from '../helpers/sparkler_run.js';

describe('API socket path', () => {
  const started: ApiProcess[] = [];
  const dirs: string[] = [];
  const tempDir = (): string => {
    const d = makeTempDir('sparkler-sock-');
    dirs.push(d);
    return d;
  };
  after(async () => {
    for (const p of started) await p.stop('SIGKILL');
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('a second sparkler on a socket in use refuses to start; the first keeps serving', async () => {
    const dir = tempDir();
    const first = await startApi({ dir });
    started.push(first);
    // Something for the first one to remember.
    assert.equal((await first.request('PUT', '/machine-config', { vcpu_count: 2, mem_size_mib: 80 })).status, 204);

    const second = await runSparklerArgs(['--api-sock', first.socketPath], { cwd: dir, timeoutMs: 10_000 });
    assert.equal(second.timedOut, false, 'the second sparkler did not exit');
    assert.notEqual(second.code, 0, `the second sparkler exited 0\n${second.stderr}`);
    assert.notEqual(second.code, null, `the second sparkler died by signal ${second.signal}`);
    assert.match(second.stderr, /in use/i, `the second sparkler's stderr does not say the socket is in use:\n${second.stderr}`);
    assert.ok(second.stderr.includes(first.socketPath), `the message does not name the socket path:\n${second.stderr}`);
    assert.equal(hasStackTrace(second.stderr), false, `stack trace:\n${second.stderr}`);

    // The first one still owns the path and answers on it.
    assert.ok(fs.statSync(first.socketPath).isSocket(), 'the socket file is gone');
    const r = await first.request('GET', '/machine-config');
    assert.equal(r.status, 200);
    assert.deepEqual([(r.json as { vcpu_count: number }).vcpu_count, (r.json as { mem_size_mib: number }).mem_size_mib], [2, 80]);
    assert.equal((await first.request('GET', '/')).status, 200);

    const end = await first.stop();
    assert.equal(end.code, 0, first.describe());
  });

  it('replaces the socket file left by a sparkler killed with SIGKILL', async () => {
    const dir = tempDir();
    const socketPath = path.join(dir, 'api.sock');
    const killed = await startApi({ dir, socketPath });
    started.push(killed);
    const end = await killed.stop('SIGKILL');
    assert.equal(end.signal, 'SIGKILL');
    assert.ok(fs.statSync(socketPath).isSocket(), 'the killed process should have left its socket file');

    const next = await startApi({ dir, socketPath });
    started.push(next);
    const r = await next.request('GET', '/');
    assert.equal(r.status, 200);
    assert.equal((r.json as { state: string }).state, 'Not started');
    assert.equal((await next.stop()).code, 0, next.describe());
  });

  it('replaces a socket file whose listener closed without unlinking it', async () => {
    const dir = tempDir();
    const socketPath = path.join(dir, 'api.sock');
    // net.createServer().listen(path), then the process ends without close(): the file stays, nobody listens.
    const r0 = spawnSync(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(socketPath)}, () => process.exit(0))`], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    assert.equal(r0.status, 0, r0.stderr);
    assert.ok(fs.statSync(socketPath).isSocket(), 'the listener should have left its socket file');

    const next = await startApi({ dir, socketPath });
    started.push(next);
    const r = await next.request('GET', '/version');
    assert.equal(r.status, 200);
    assert.equal((await next.request('GET', '/')).status, 200);
    assert.equal((await next.stop()).code, 0, next.describe());
  });

  it('does not delete a regular file that is in the way: it refuses to start', async () => {
    // Only a stale *socket* may be replaced; Firecracker itself never removes anything at --api-sock.
    const dir = tempDir();
    const notASocket = path.join(dir, 'precious.txt');
    fs.writeFileSync(notASocket, 'user data\n');
    const r = await runSparklerArgs(['--api-sock', notASocket], { cwd: dir, timeoutMs: 3000 });
    const content = fs.existsSync(notASocket) && fs.statSync(notASocket).isFile() ? fs.readFileSync(notASocket, 'utf8') : undefined;
    assert.equal(content, 'user data\n', `sparkler --api-sock ${notASocket} removed the regular file at that path (exit ${r.code}, signal ${r.signal}${r.timedOut ? ', it was serving there' : ''})\n${r.stderr}`);
    assert.equal(r.timedOut, false, 'it started serving');
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes(notASocket), r.stderr);
  });
});
