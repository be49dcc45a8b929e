/**
 * `blobasaur import`: copies a live Redis into this server. SCANs the source (MATCH/COUNT), reads
 * each key with DUMP + PTTL and RESTOREs it here with an absolute expiry (ABSTTL), so a key keeps
 * its TTL whatever the copy's pace. Where the source refuses DUMP (managed services rename or
 * disable it), strings and hashes are read with GET / HGETALL and serialized here instead. Keys of
 * other types (list, set, zset, stream, module) are reported and skipped.
 *
 * Memory is bounded by the pipeline: at most `pipeline` keys are in flight at once, so the peak is
 * about `pipeline` × the largest value, plus the names of the keys copied (SCAN may repeat one).
 */
import { RespClient, RespError, RespSimple, type RespValue } from '../protocol/client.js';
import { dumpType, encodeDump, RDB_TYPE_HASH, RDB_TYPE_HASH_LISTPACK, RDB_TYPE_HASH_ZIPLIST, RDB_TYPE_STRING } from '../protocol/rdb.js';

export interface Endpoint {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db?: number;
}

export interface ImportOptions {
  from: Endpoint;
  to: Endpoint;
  /** SCAN MATCH pattern (default: every key). */
  match?: string;
  /** SCAN COUNT hint (default 100). */
  count?: number;
  /** Overwrite keys that already exist here (RESTORE … REPLACE); otherwise they fail as BUSYKEY. */
  replace?: boolean;
  /** Keys in flight at once (default 32). */
  pipeline?: number;
  /** Never try DUMP: read strings and hashes with GET / HGETALL. */
  plainReads?: boolean;
  /** Per-request timeout in ms (default 30000). */
  timeoutMs?: number;
  /** Called after every batch of keys; `done` is true once, at the end. */
  progress?: (p: ImportProgress) => void;
}

export interface ImportProgress {
  /** Keys in the source when the import started (its DBSIZE): an estimate, since the source is live. */
  total: number;
  scanned: number;
  copied: number;
  skipped: number;
  failed: number;
  bytes: number;
  elapsedMs: number;
  done: boolean;
}

export interface ImportSummary extends ImportProgress {
  /** Skipped keys by Redis type name (list, set, zset, stream, module, …). */
  skippedByType: Record<string, number>;
  /** The first few failures: key (printable) and the error. */
  failures: { key: string; error: string }[];
  /** How values were read: 'dump', or 'plain' once the source refused DUMP. */
  mode: 'dump' | 'plain';
}

export class ImportError extends Error {}

/** RDB type byte → Redis TYPE name, for the skip report. */
function typeName(rdbType: number): string {
  if ([1, 10, 14, 18].includes(rdbType)) return 'list';
  if ([2, 11, 20].includes(rdbType)) return 'set';
  if ([3, 5, 12, 17].includes(rdbType)) return 'zset';
  if ([15, 19, 21].includes(rdbType)) return 'stream';
  if ([6, 7].includes(rdbType)) return 'module';
  if (rdbType === 9 || rdbType >= 22) return 'hash (with field expiries or zipmap)';
  return `rdb type ${rdbType}`;
}

const SUPPORTED = new Set([RDB_TYPE_STRING, RDB_TYPE_HASH, RDB_TYPE_HASH_ZIPLIST, RDB_TYPE_HASH_LISTPACK]);

async function open(e: Endpoint, timeoutMs: number, what: string): Promise<RespClient> {
  let c: RespClient;
  try {
    c = await RespClient.connect({ host: e.host, port: e.port, timeoutMs });
  } catch (err) {
    throw new ImportError(`cannot connect to ${what} ${e.host}:${e.port}: ${(err as Error).message}`);
  }
  const check = async (args: string[], label: string): Promise<void> => {
    const r = await c.send(args);
    if (r instanceof RespError) {
      c.close();
      throw new ImportError(`${what} ${e.host}:${e.port} refused ${label}: ${r.message}`);
    }
  };
  if (e.password !== undefined) await check(e.username === undefined ? ['AUTH', e.password] : ['AUTH', e.username, e.password], 'AUTH');
  if (e.db !== undefined && e.db !== 0) await check(['SELECT', String(e.db)], 'SELECT');
  return c;
}

function printable(key: Buffer): string {
  return JSON.stringify(key.toString('latin1')).slice(1, -1);
}

/** One key read from the source: a payload to RESTORE, a type to skip, or nothing (gone). */
type Read = { kind: 'payload'; payload: Buffer; expiresAt: number | null } | { kind: 'skip'; type: string } | { kind: 'gone' } | { kind: 'error'; error: string };

function isUnknownCommand(r: RespValue): boolean {
  return r instanceof RespError && /^(ERR unknown command|NOPERM|ERR.*(disabled|renamed))/i.test(r.message);
}

function expiryOf(pttl: RespValue, at: number): number | null {
  return typeof pttl === 'number' && pttl >= 0 ? at + Math.max(1, pttl) : null;
}

async function readDump(src: RespClient, key: Buffer): Promise<Read | 'refused'> {
  const at = Date.now();
  const [pttl, dump] = await Promise.all([src.send(['PTTL', key]), src.send(['DUMP', key])]);
  if (isUnknownCommand(dump)) return 'refused';
  if (dump instanceof RespError) return { kind: 'error', error: dump.message };
  if (dump === null || pttl === -2) return { kind: 'gone' };
  if (!(dump instanceof Buffer)) return { kind: 'error', error: 'DUMP answered something other than a bulk string' };
  const type = dumpType(dump);
  if (type === null) return { kind: 'error', error: 'DUMP payload too short' };
  if (!SUPPORTED.has(type)) return { kind: 'skip', type: typeName(type) };
  return { kind: 'payload', payload: dump, expiresAt: expiryOf(pttl, at) };
}

async function readPlain(src: RespClient, key: Buffer): Promise<Read> {
  const at = Date.now();
  const [type, pttl] = await Promise.all([src.send(['TYPE', key]), src.send(['PTTL', key])]);
  const name = type instanceof RespSimple ? type.value : String(type);
  if (name === 'none') return { kind: 'gone' };
  if (name === 'string') {
    const v = await src.send(['GET', key]);
    if (v === null) return { kind: 'gone' };
    if (!(v instanceof Buffer)) return { kind: 'error', error: v instanceof RespError ? v.message : 'GET answered something other than a bulk string' };
    return { kind: 'payload', payload: encodeDump({ type: 'string', value: v }), expiresAt: expiryOf(pttl, at) };
  }
  if (name === 'hash') {
    const v = await src.send(['HGETALL', key]);
    if (!Array.isArray(v)) return { kind: 'error', error: v instanceof RespError ? v.message : 'HGETALL answered something other than an array' };
    if (v.length === 0) return { kind: 'gone' };
    const fields: [Buffer, Buffer][] = [];
    for (let i = 0; i + 1 < v.length; i += 2) fields.push([v[i] as Buffer, v[i + 1] as Buffer]);
    return { kind: 'payload', payload: encodeDump({ type: 'hash', fields }), expiresAt: expiryOf(pttl, at) };
  }
  return { kind: 'skip', type: name };
}

/** Copies every matching key of `from` into `to`; resolves with the summary. */
export async function importFromRedis(opts: ImportOptions): Promise<ImportSummary> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const pipeline = Math.max(1, opts.pipeline ?? 32);
  const started = Date.now();
  const src = await open(opts.from, timeoutMs, 'source');
  let dst: RespClient;
  try {
    dst = await open(opts.to, timeoutMs, 'target');
  } catch (err) {
    src.close();
    throw err;
  }
  const s: ImportSummary = {
    scanned: 0,
    copied: 0,
    total: 0,
    skipped: 0,
    failed: 0,
    bytes: 0,
    elapsedMs: 0,
    done: false,
    skippedByType: {},
    failures: [],
    mode: opts.plainReads === true ? 'plain' : 'dump',
  };
  const fail = (key: Buffer, error: string): void => {
    s.failed++;
    if (s.failures.length < 20) s.failures.push({ key: printable(key), error });
  };
  const report = (done: boolean): void => {
    s.elapsedMs = Date.now() - started;
    s.done = done;
    opts.progress?.({ total: s.total, scanned: s.scanned, copied: s.copied, skipped: s.skipped, failed: s.failed, bytes: s.bytes, elapsedMs: s.elapsedMs, done });
  };

  // SCAN may return a key twice; the second copy is skipped, not refused as BUSYKEY. Names only.
  const seen = new Set<string>();
  const copyOne = async (key: Buffer): Promise<void> => {
    const id = key.toString('latin1');
    if (seen.has(id)) return;
    seen.add(id);
    let read: Read | 'refused' = s.mode === 'dump' ? await readDump(src, key) : await readPlain(src, key);
    if (read === 'refused') {
      s.mode = 'plain';
      read = await readPlain(src, key);
    }
    switch (read.kind) {
      case 'gone':
        return;
      case 'skip':
        s.skipped++;
        s.skippedByType[read.type] = (s.skippedByType[read.type] ?? 0) + 1;
        return;
      case 'error':
        fail(key, read.error);
        return;
      case 'payload': {
        if (read.expiresAt !== null && read.expiresAt <= Date.now()) return; // expired on the way
        const cmd: (string | Buffer)[] = ['RESTORE', key, String(read.expiresAt ?? 0), read.payload, 'ABSTTL'];
        if (opts.replace === true) cmd.push('REPLACE');
        const r = await dst.send(cmd);
        if (r instanceof RespError) fail(key, r.message);
        else {
          s.copied++;
          s.bytes += read.payload.length;
        }
      }
    }
  };

  try {
    const size = await src.send(['DBSIZE']);
    s.total = typeof size === 'number' ? size : 0;
    let cursor = '0';
    do {
      const args = ['SCAN', cursor, 'COUNT', String(opts.count ?? 100)];
      if (opts.match !== undefined) args.push('MATCH', opts.match);
      const r = await src.send(args);
      if (!Array.isArray(r) || r.length !== 2 || !(r[0] instanceof Buffer) || !Array.isArray(r[1])) {
        throw new ImportError(`source refused SCAN: ${r instanceof RespError ? r.message : 'unexpected reply'}`);
      }
      cursor = r[0].toString();
      const keys = r[1] as Buffer[];
      s.scanned += keys.length;
      // At most `pipeline` keys in flight: the memory bound.
      for (let i = 0; i < keys.length; i += pipeline) {
        await Promise.all(keys.slice(i, i + pipeline).map(copyOne));
      }
      report(false);
    } while (cursor !== '0');
  } finally {
    src.close();
    dst.close();
  }
  report(true);
  return s;
}
