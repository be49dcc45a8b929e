/**
 * The dashboard's JSON API. Stored data is reached only through the keyspace API (Keyspace) and
 * statistics through Store.stats()/pageStats()/probe(), as commands do; every answer is bounded
 * (a page of keys or fields, a preview of a value) so no request does unbounded synchronous work.
 */
import type { ClientState, ServerContext } from '../commands/types.js';
import { globMatch } from '../commands/glob.js';
import { FIELD_SCAN_START, SCAN_START, type FieldScanPosition, type Keyspace, type ScanPosition } from '../storage/keyspace.js';
import type { Store } from '../storage/store.js';
import { vacuumActivity } from '../tools/vacuum.js';
import { VERSION } from '../version.js';
import type { Sampler } from './sampler.js';

/** One slow-log entry as SLOWLOG GET describes it. */
export interface SlowLogEntry {
  id: number;
  /** Unix time in seconds. */
  timestamp: number;
  durationUs: number;
  args: string[];
  client: string;
  clientName: string;
}

/** Where the dashboard reads the slow log from (SLOWLOG's); absent: the page is not offered. */
export interface SlowLogSource {
  /** The newest `max` entries, newest first. */
  entries(max: number): SlowLogEntry[];
  /** slowlog-log-slower-than, in µs (negative: off). */
  readonly thresholdUs: number;
}

export interface DashboardDeps {
  server: ServerContext;
  store: Store;
  keyspace: Keyspace;
  sampler: Sampler;
  /** Closes the client with this id; false when there is none. */
  killClient(id: number): boolean;
  slowlog?: SlowLogSource;
  /** Shown on the overview: where the server listens and keeps its data. */
  info: { addr: string; dataDir: string; mode: string };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A key as the browser sees it: its bytes (base64url, to send back) and a readable rendering. */
export interface KeyName {
  b64: string;
  text: string;
}

export function keyName(b: Buffer): KeyName {
  return { b64: b.toString('base64url'), text: readable(b) };
}

/** UTF-8 when the bytes are valid printable UTF-8, else with \xNN escapes (as redis-cli shows them). */
export function readable(b: Buffer): string {
  const s = b.toString('utf8');
  if (Buffer.from(s, 'utf8').equals(b) && !/[\x00-\x08\x0b-\x1f\x7f]/.test(s)) return s;
  let out = '';
  for (const c of b) out += c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  return out;
}

export function decodeKey(param: string | null, what = 'k'): Buffer {
  if (param === null) throw new ApiError(400, `missing parameter ${what}`);
  if (!/^[A-Za-z0-9_-]*$/.test(param)) throw new ApiError(400, `parameter ${what} is not base64url`);
  return Buffer.from(param, 'base64url');
}

const MAX_PAGE = 500;

function pageSize(param: string | null, fallback: number): number {
  if (param === null) return fallback;
  const n = Number(param);
  if (!Number.isInteger(n) || n < 1) throw new ApiError(400, 'count must be a positive integer');
  return Math.min(n, MAX_PAGE);
}

/** Cursors are opaque to the browser: the scan position, base64url JSON. */
function encodeCursor(pos: object | null): string | null {
  return pos === null ? null : Buffer.from(JSON.stringify(pos, (_k, v: unknown) => (Buffer.isBuffer(v) ? { hex: v.toString('hex') } : v))).toString('base64url');
}

function parseCursor(param: string | null): unknown {
  if (param === null || param === '') return null;
  try {
    return JSON.parse(Buffer.from(param, 'base64url').toString('utf8'), (_k, v: unknown) =>
      typeof v === 'object' && v !== null && 'hex' in v && typeof (v as { hex: unknown }).hex === 'string' ? Buffer.from((v as { hex: string }).hex, 'hex') : v,
    );
  } catch {
    throw new ApiError(400, 'invalid cursor');
  }
}

function scanPosition(param: string | null, shards: number): ScanPosition {
  const c = parseCursor(param);
  if (c === null) return SCAN_START;
  const p = c as Partial<ScanPosition>;
  if ((p.phase !== 'plain' && p.phase !== 'ns') || !Number.isInteger(p.shard) || (p.shard as number) < 0 || (p.shard as number) >= shards || !(p.after === null || Buffer.isBuffer(p.after))) {
    throw new ApiError(400, 'invalid cursor');
  }
  return { phase: p.phase, shard: p.shard as number, after: p.after };
}

function fieldPosition(param: string | null, shards: number): FieldScanPosition {
  const c = parseCursor(param);
  if (c === null) return FIELD_SCAN_START;
  const p = c as Partial<FieldScanPosition>;
  if (!Number.isInteger(p.shard) || (p.shard as number) < 0 || (p.shard as number) >= shards || !(p.after === null || Buffer.isBuffer(p.after))) {
    throw new ApiError(400, 'invalid cursor');
  }
  return { shard: p.shard as number, after: p.after };
}

/** Which optional pages have something to show. */
export function features(d: DashboardDeps): { slowlog: boolean; cluster: boolean } {
  return { slowlog: d.slowlog !== undefined, cluster: d.server.cluster !== undefined };
}

export function overview(d: DashboardDeps): unknown {
  const st = d.store.stats();
  const pages = d.store.pageStats();
  const health = d.store.probe();
  const vac = vacuumActivity(d.store);
  let clients = 0;
  for (const _ of d.server.clients()) clients++;
  return {
    version: VERSION,
    ...d.info,
    uptimeSec: Math.floor((Date.now() - d.server.startedAt) / 1000),
    clients,
    totalCommands: d.server.stats.totalCommands,
    totalConnections: d.server.stats.totalConnections,
    inflightWrites: st.inflightWrites,
    sweptRows: st.sweptRows,
    readCache: st.readCache,
    checkpoints: st.checkpoints,
    vacuum: vac,
    shards: d.sampler.shards().map((s, i) => ({
      ...s,
      pageSize: pages[i]?.pageSize ?? 0,
      autoVacuum: ['none', 'full', 'incremental'][pages[i]?.autoVacuum ?? 0],
      healthy: health[i] !== undefined && health[i].readable && health[i].writable,
    })),
    cluster: d.server.cluster === undefined ? null : d.server.cluster.summary(),
    features: features(d),
    history: d.sampler.history(),
  };
}

/** A page of keys matching a glob pattern and a type, as SCAN MATCH … TYPE … would return them. */
export function keys(d: DashboardDeps, q: URLSearchParams, now: number): unknown {
  const count = pageSize(q.get('count'), 100);
  const type = q.get('type') ?? '';
  if (type !== '' && type !== 'string' && type !== 'hash') throw new ApiError(400, 'type must be string or hash');
  const pattern = q.get('pattern') ?? '*';
  const pat = Buffer.from(pattern === '' ? '*' : pattern);
  const types = { strings: type !== 'hash', hashes: type !== 'string' };
  let pos: ScanPosition | null = scanPosition(q.get('cursor'), d.store.numShards);
  const out: { key: KeyName; type: string }[] = [];
  // Bounded: at most 20 scan steps of `count` candidates per request, however few match.
  for (let steps = 0; pos !== null && out.length < count && steps < 20; steps++) {
    const r = d.keyspace.scanStep(pos, count, types, now);
    for (const k of r.keys) {
      if (!globMatch(pat, k)) continue;
      const t = d.keyspace.keyType(k, now);
      if (t === 'none' || (type !== '' && t !== type)) continue;
      out.push({ key: keyName(k), type: t });
    }
    pos = r.next;
  }
  return { keys: out, cursor: encodeCursor(pos) };
}

/** A plain key's type and metadata, or a namespace's first page of fields. */
export async function key(d: DashboardDeps, q: URLSearchParams, now: number): Promise<unknown> {
  const k = decodeKey(q.get('k'));
  const nsParam = q.get('ns');
  if (nsParam !== null) {
    const ns = decodeKey(nsParam, 'ns');
    const meta = await d.keyspace.meta(ns, k, now);
    if (meta === null) throw new ApiError(404, 'no such field');
    return { key: keyName(k), ns: keyName(ns), type: 'field', meta: (meta) };
  }
  const type = d.keyspace.keyType(k, now);
  if (type === 'none') throw new ApiError(404, 'no such key');
  if (type === 'string') return { key: keyName(k), type, meta: (await d.keyspace.meta(null, k, now)) };
  return { key: keyName(k), type };
}

/** A page of a namespace's fields with each field's metadata. */
export async function fields(d: DashboardDeps, q: URLSearchParams, now: number): Promise<unknown> {
  const ns = decodeKey(q.get('ns'), 'ns');
  const count = pageSize(q.get('count'), 50);
  const pattern = q.get('pattern');
  const pat = pattern === null || pattern === '' ? null : Buffer.from(pattern);
  let pos: FieldScanPosition | null = fieldPosition(q.get('cursor'), d.store.numShards);
  const found: Buffer[] = [];
  for (let steps = 0; pos !== null && found.length < count && steps < 20; steps++) {
    const r = d.keyspace.fieldScanStep(ns, pos, count, now);
    for (const f of r.fields) {
      // Values come back decoding; nothing here needs them, so a failure is not the listing's.
      if (f.value instanceof Promise) f.value.catch(() => {});
      if (pat === null || globMatch(pat, f.field)) found.push(f.field);
    }
    pos = r.next;
  }
  const rows = await Promise.all(found.map(async (f) => ({ field: keyName(f), meta: (await d.keyspace.meta(ns, f, now)) })));
  return { ns: keyName(ns), fields: rows.filter((r) => r.meta !== null), cursor: encodeCursor(pos) };
}

/** What a value looks like, by its first bytes: the Content-Type it is served with. */
export function sniff(b: Buffer): { type: string; kind: 'image' | 'json' | 'text' | 'binary' } {
  const starts = (sig: number[]): boolean => sig.every((c, i) => b[i] === c);
  if (starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { type: 'image/png', kind: 'image' };
  if (starts([0xff, 0xd8, 0xff])) return { type: 'image/jpeg', kind: 'image' };
  if (starts([0x47, 0x49, 0x46, 0x38])) return { type: 'image/gif', kind: 'image' };
  if (starts([0x52, 0x49, 0x46, 0x46]) && b.subarray(8, 12).toString('latin1') === 'WEBP') return { type: 'image/webp', kind: 'image' };
  const head = b.subarray(0, 4096);
  const text = head.toString('utf8');
  // A multi-byte character cut at 4096 bytes leaves one replacement character at the end; allow it.
  const valid = !text.slice(0, -1).includes('\ufffd') && !/[\x00-\x08\x0e-\x1f]/.test(text);
  if (!valid) return { type: 'application/octet-stream', kind: 'binary' };
  if (b.length <= 1048576) {
    try {
      JSON.parse(b.toString('utf8'));
      return { type: 'application/json', kind: 'json' };
    } catch {
      // not JSON
    }
  }
  return { type: 'text/plain; charset=utf-8', kind: 'text' };
}

export async function value(d: DashboardDeps, q: URLSearchParams, now: number): Promise<{ body: Buffer; type: string; kind: string; size: number }> {
  const k = decodeKey(q.get('k'));
  const nsParam = q.get('ns');
  const ns = nsParam === null ? null : decodeKey(nsParam, 'ns');
  const v = d.keyspace.get(ns, k, now);
  if (v === null) throw new ApiError(404, ns === null ? 'no such key' : 'no such field');
  const body = await v;
  const s = sniff(body);
  const limit = q.get('limit');
  if (limit !== null && !/^\d+$/.test(limit)) throw new ApiError(400, 'limit must be a non-negative integer');
  const n = limit === null ? body.length : Math.min(body.length, Number(limit));
  return { body: body.subarray(0, n), type: s.type, kind: s.kind, size: body.length };
}

export async function remove(d: DashboardDeps, body: unknown, now: number): Promise<unknown> {
  const b = body as { k?: unknown; ns?: unknown };
  if (typeof b.k !== 'string') throw new ApiError(400, 'missing k');
  const k = decodeKey(b.k);
  if (b.ns !== undefined && b.ns !== null) {
    if (typeof b.ns !== 'string') throw new ApiError(400, 'ns must be a string');
    const r = d.keyspace.delete(decodeKey(b.ns, 'ns'), k, now);
    await r.ack;
    return { removed: r.removed };
  }
  const type = d.keyspace.keyType(k, now);
  if (type === 'none') return { removed: false };
  if (type === 'string') {
    const r = d.keyspace.delete(null, k, now);
    await r.ack;
    return { removed: r.removed };
  }
  await d.keyspace.deleteNamespace(k);
  return { removed: true };
}

export function clients(d: DashboardDeps, now: number): unknown {
  const out: unknown[] = [];
  for (const c of d.server.clients() as Iterable<ClientState>) {
    out.push({
      id: c.id,
      addr: c.addr,
      name: c.name,
      lib: c.libName === '' ? '' : `${c.libName} ${c.libVer}`.trim(),
      ageSec: Math.floor((now - c.createdAt) / 1000),
      idleSec: Math.floor((now - c.lastInteraction) / 1000),
      lastCommand: c.lastCommand,
      resp: c.proto,
      authenticated: c.authenticated,
      queryBufferBytes: c.queryBufferBytes,
      outputBytes: c.outputBytes,
    });
    if (out.length >= 1000) break;
  }
  return { clients: out };
}

export function killClient(d: DashboardDeps, body: unknown): unknown {
  const id = (body as { id?: unknown }).id;
  if (typeof id !== 'number' || !Number.isInteger(id)) throw new ApiError(400, 'id must be an integer');
  if (!d.killClient(id)) throw new ApiError(404, 'no such client');
  return { killed: id };
}

export function slowlog(d: DashboardDeps, q: URLSearchParams): unknown {
  if (d.slowlog === undefined) throw new ApiError(404, 'this server keeps no slow log');
  return { thresholdUs: d.slowlog.thresholdUs, entries: d.slowlog.entries(pageSize(q.get('count'), 128)) };
}

export function cluster(d: DashboardDeps): unknown {
  const c = d.server.cluster;
  if (c === undefined) throw new ApiError(404, 'cluster mode is not enabled');
  return {
    summary: c.summary(),
    conflicts: c.slotConflicts(),
    nodes: c.nodes().map((n) => ({
      id: n.id,
      name: n.name,
      addr: `${n.host}:${n.port}`,
      busPort: n.busPort,
      slots: n.slots,
      myself: n.myself,
      linked: n.linked,
      state: n.failed ? 'fail' : n.pfail ? 'pfail' : 'ok',
      lastHeardMsAgo: n.myself ? 0 : Date.now() - n.lastHeard,
    })),
  };
}
