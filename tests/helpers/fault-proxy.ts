import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A tiny HTTP proxy between a storage client and a real server (s3rver, the GCS test server)
 * that answers chosen requests with a failure (503 SlowDown, 429, 403, a dropped connection) the
 * first N times, and logs every request, so a test can count the client's attempts. Requests are
 * forwarded unchanged (Host included), so S3 signatures stay valid.
 */

export interface SeenRequest {
  method: string;
  /** Path and query, as received. */
  url: string;
}

export type Fault =
  | { status: number; headers?: Record<string, string>; body?: string }
  /** Destroy the connection without answering (the client sees ECONNRESET / socket hang up). */
  | 'reset';

export interface FaultRule {
  match(req: SeenRequest): boolean;
  /** How many matching requests fail; later ones pass through. */
  times: number;
  fault: Fault;
}

export interface FaultProxy {
  url: string;
  port: number;
  /** Every request received, in order. */
  seen: SeenRequest[];
  /** Adds a rule; rules are tried in the order added. */
  fail(rule: FaultRule): void;
  clear(): void;
  close(): Promise<void>;
}

export const S3_SLOW_DOWN: Fault = {
  status: 503,
  headers: { 'content-type': 'application/xml' },
  body: '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>FAULT</RequestId></Error>',
};

export const S3_ACCESS_DENIED: Fault = {
  status: 403,
  headers: { 'content-type': 'application/xml' },
  body: '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>FAULT</RequestId></Error>',
};

/** A GCS JSON API error body (https://cloud.google.com/storage/docs/json_api/v1/status-codes). */
export function gcsFault(status: number, reason: string, message: string): Fault {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=UTF-8' },
    body: JSON.stringify({ error: { code: status, message, errors: [{ message, domain: 'global', reason }] } }),
  };
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const to = new URL(target);
  const rules: { rule: FaultRule; used: number }[] = [];
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    const r: SeenRequest = { method: req.method ?? 'GET', url: req.url ?? '/' };
    seen.push(r);
    const hit = rules.find((x) => x.used < x.rule.times && x.rule.match(r));
    if (hit) {
      hit.used++;
      const fault = hit.rule.fault;
      // Drain the request first so the client is not writing into a closed socket.
      req.resume();
      req.on('end', () => {
        if (fault === 'reset') {
          req.socket.destroy();
          return;
        }
        const body = fault.body ?? '';
        res.writeHead(fault.status, { ...fault.headers, 'content-length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
      });
      return;
    }
    const upstream = http.request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    fail(rule) {
      rules.push({ rule, used: 0 });
    },
    clear() {
      rules.length = 0;
      seen.length = 0;
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
