/**
 * The HTTP endpoint (`[metrics] enabled = true`): GET /metrics in Prometheus text format, GET
 * /health as JSON, and the dashboard (`[dashboard] enabled`, src/dashboard/) on / and /api/.
 * /metrics and /health carry no stored data and stay open for scrapers and health checks; the
 * dashboard asks for requirepass. Plain node:http.
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { ServerContext } from '../commands/types.js';
import type { Store } from '../storage/store.js';
import type { DashboardDeps } from '../dashboard/api.js';
import { handleDashboard } from '../dashboard/routes.js';

export interface ShardHealth {
  shard: number;
  readable: boolean;
  writable: boolean;
  /** Marked damaged by an SQLite corruption error or a checksum mismatch: unhealthy until repaired. */
  damaged: boolean;
  error: string | null;
}

export interface Health {
  ok: boolean;
  shards: ShardHealth[];
  cluster: { enabled: boolean; state: string };
}

/** Every shard read and write-locked once; ok when all of them answer and the cluster (if any) is ok. */
export function health(store: Store, server: ServerContext): Health {
  const shards = store.probe();
  // Without [cluster] enabled a single node is its own healthy cluster.
  const cluster = server.cluster === undefined ? { enabled: false, state: 'ok' } : { enabled: true, state: server.cluster.summary().state };
  return {
    ok: shards.every((s) => s.readable && s.writable && !s.damaged) && cluster.state === 'ok',
    shards,
    cluster,
  };
}

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(
  host: string,
  port: number,
  registry: Registry,
  store: Store,
  context: ServerContext,
  dashboard: DashboardDeps | null = null,
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (dashboard !== null && handleDashboard(req, res, dashboard)) return;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(err)}\n`),
      );
      return;
    }
    if (path === '/health') {
      const h = health(store, context);
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(h)}\n`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: try ${dashboard === null ? '' : '/ (the dashboard), '}/metrics or /health\n`);
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // The Redis listener keeps the process alive; this one must not hold it open after a SHUTDOWN.
  server.unref();
  const address = server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
