/**
 * A throwaway node:http server on a temporary Unix socket, standing in for
 * the API server in client tests: it records every request and answers with
 * what the test's handler returns (default 204, no body).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** The raw body ('' when none). */
  body: string;
}

export interface FakeReply {
  status?: number;
  /** An object is sent as JSON; a string as is. */
  body?: unknown;
  /** Never answer (to test timeouts). */
  hang?: boolean;
}

export type FakeHandler = (req: RecordedRequest) => FakeReply | undefined;

export interface FakeApi {
  socketPath: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export async function startFakeApi(handler: FakeHandler = () => undefined): Promise<FakeApi> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-fake-api-'));
  const socketPath = path.join(dir, 'api.sock');
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rec: RecordedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(rec);
      const reply = handler(rec) ?? {};
      if (reply.hang) return;
      const status = reply.status ?? 204;
      const body = reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
      res.writeHead(status, body ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } : {});
      res.end(body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, resolve);
  });
  return {
    socketPath,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          fs.rmSync(dir, { recursive: true, force: true });
          resolve();
        });
      }),
  };
}
