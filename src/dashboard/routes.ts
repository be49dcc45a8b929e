/**
 * The dashboard over HTTP: static pages (shipped in src/dashboard/static, read once, no build step)
 * and the JSON API under /api/. With requirepass set every request must carry it by HTTP Basic
 * authentication (user "default" or empty); the password is compared in constant time by the same
 * check as AUTH and never appears in a URL or a log line. Changes (delete, kill) must come as POST
 * with an X-Blobasaur-Dashboard header, which another site's page cannot send without a CORS
 * preflight this server never grants.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as api from './api.js';

const STATIC_DIR = new URL('../../../src/dashboard/static/', import.meta.url);

const STATIC_FILES: Record<string, string> = {
  '/': 'index.html',
  '/app.js': 'app.js',
  '/app.css': 'app.css',
};

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

/** Pages load scripts and styles from this origin only; values are never run as scripts. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const MAX_BODY = 64 * 1024;

export const CHANGE_HEADER = 'x-blobasaur-dashboard';

let cache: Map<string, Buffer> | null = null;

/** The key as a file name for a download: readable, percent-encoded, without path separators. */
function downloadName(k: string | null): string {
  const name = api.readable(api.decodeKey(k)).replace(/[\/\\]/g, '_').slice(0, 200);
  return encodeURIComponent(name === '' ? 'value.bin' : name);
}

function staticFile(path: string): Buffer | undefined {
  cache ??= new Map(Object.entries(STATIC_FILES).map(([route, file]) => [route, readFileSync(new URL(file, STATIC_DIR))]));
  return cache.get(path);
}

/** Whether the request carries the password (or none is needed). */
export function authorized(req: IncomingMessage, deps: api.DashboardDeps): boolean {
  if (!deps.server.auth.required) return true;
  const header = req.headers.authorization ?? '';
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (m === null) return false;
  const decoded = Buffer.from(m[1], 'base64');
  const colon = decoded.indexOf(0x3a);
  if (colon < 0) return false;
  const user = decoded.subarray(0, colon);
  return deps.server.auth.verify(user.length === 0 ? Buffer.from('default') : user, decoded.subarray(colon + 1));
}

function send(res: ServerResponse, status: number, body: Buffer | string, type: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': type,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'content-security-policy': CSP,
    'referrer-policy': 'no-referrer',
    ...extra,
  });
  res.end(body);
}

function json(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, `${JSON.stringify(value)}\n`, 'application/json');
}

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > MAX_BODY) {
        reject(new api.ApiError(413, 'request body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new api.ApiError(400, 'body must be JSON'));
      }
    });
    req.on('error', reject);
  });
}

/** Handles a dashboard request; false when the path is not the dashboard's. */
export function handleDashboard(req: IncomingMessage, res: ServerResponse, deps: api.DashboardDeps): boolean {
  const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
  const path = url.pathname;
  const isStatic = Object.hasOwn(STATIC_FILES, path);
  if (!isStatic && !path.startsWith('/api/')) return false;
  if (!authorized(req, deps)) {
    send(res, 401, 'this server has a password (requirepass): sign in with it, user "default"\n', 'text/plain; charset=utf-8', {
      'www-authenticate': 'Basic realm="blobasaur", charset="UTF-8"',
    });
    return true;
  }
  if (isStatic) {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'method not allowed\n', 'text/plain', { allow: 'GET, HEAD' });
      return true;
    }
    const file = staticFile(path)!;
    send(res, 200, file, TYPES[STATIC_FILES[path].split('.').pop()!]);
    return true;
  }
  void route(req, res, url, deps).catch((err: unknown) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof api.ApiError) json(res, err.status, { error: err.message });
    else json(res, 500, { error: err instanceof Error ? err.message : String(err) });
  });
  return true;
}

async function route(req: IncomingMessage, res: ServerResponse, url: URL, deps: api.DashboardDeps): Promise<void> {
  const q = url.searchParams;
  const now = Date.now();
  const get = req.method === 'GET' || req.method === 'HEAD';
  if (req.method === 'POST') {
    if (req.headers[CHANGE_HEADER] !== '1') throw new api.ApiError(403, `changes need the ${CHANGE_HEADER} header`);
    const body = await readBody(req);
    switch (url.pathname) {
      case '/api/delete':
        return json(res, 200, await api.remove(deps, body, now));
      case '/api/clients/kill':
        return json(res, 200, api.killClient(deps, body));
    }
    throw new api.ApiError(404, 'not found');
  }
  if (!get) throw new api.ApiError(405, 'method not allowed');
  switch (url.pathname) {
    case '/api/overview':
      return json(res, 200, api.overview(deps));
    case '/api/features':
      return json(res, 200, api.features(deps));
    case '/api/keys':
      return json(res, 200, api.keys(deps, q, now));
    case '/api/key':
      return json(res, 200, await api.key(deps, q, now));
    case '/api/fields':
      return json(res, 200, await api.fields(deps, q, now));
    case '/api/value': {
      const v = await api.value(deps, q, now);
      const download = q.get('download') === '1';
      // Only raster images are shown inline; anything else is text or a download, never markup.
      const type = download ? 'application/octet-stream' : v.kind === 'image' ? v.type : v.kind === 'binary' ? 'application/octet-stream' : 'text/plain; charset=utf-8';
      return send(res, 200, v.body, type, {
        'x-value-kind': v.kind,
        'x-value-size': String(v.size),
        ...(download ? { 'content-disposition': `attachment; filename="value.bin"; filename*=UTF-8''${downloadName(q.get('k'))}` } : {}),
        'content-security-policy': 'sandbox',
      });
    }
    case '/api/clients':
      return json(res, 200, api.clients(deps, now));
    case '/api/slowlog':
      return json(res, 200, api.slowlog(deps, q));
    case '/api/cluster':
      return json(res, 200, api.cluster(deps));
  }
  throw new api.ApiError(404, 'not found');
}
