/**
 * Reads that span keys rather than one key: a namespace's fields (which live on every shard),
 * namespaces as keys, scans and random picks. Each merges the committed rows with the pending-write
 * overlay the same way single-key reads do, so they see every write executed before them.
 */
import { expired, type OverlayEntry, type PendingValue } from './overlay.js';
import type { FieldRow } from './shard.js';
import { decodeRow, type Store } from './store.js';
import type { WriteQueue } from './write-queue.js';

export interface FieldValue {
  field: Buffer;
  /** The value, or null when the caller asked for names only. */
  value: PendingValue | null;
}

/** Live pending entries of a namespace (or of the plain key space) in one shard, by key. */
function pendingByKey(q: WriteQueue, ns: Buffer | null): Map<string, OverlayEntry> {
  const out = new Map<string, OverlayEntry>();
  for (const e of q.overlay.pending(ns)) out.set(e.key.toString('latin1'), e);
  return out;
}

function live(e: OverlayEntry, now: number): boolean {
  return e.value !== null && !expired(e, now);
}

/** Every live field of a namespace, gathered from all shards. */
export function namespaceFields(store: Store, ns: Buffer, withValues: boolean): FieldValue[] {
  const out: FieldValue[] = [];
  const now = Date.now();
  for (const q of store.queues) {
    const pending = pendingByKey(q, ns);
    if (!q.overlay.hidesCommitted(ns)) {
      if (withValues) {
        for (const row of q.shard.nsFields(ns, null, -1, now)) {
          if (!pending.has(row.key.toString('latin1'))) out.push({ field: row.key, value: decodeRow(row, ns, row.key) });
        }
      } else {
        for (const field of q.shard.nsFieldNames(ns, now)) {
          if (!pending.has(field.toString('latin1'))) out.push({ field, value: null });
        }
      }
    }
    for (const e of pending.values()) {
      if (live(e, now)) out.push({ field: e.key, value: withValues ? store.valueOf(q, ns, e) : null });
    }
  }
  return out;
}

/** Whether a namespace has at least one live field: then it is a key, like a Redis hash. */
export function namespaceExists(store: Store, ns: Buffer): boolean {
  const now = Date.now();
  for (const q of store.queues) {
    const pending = pendingByKey(q, ns);
    for (const e of pending.values()) if (live(e, now)) return true;
    if (q.overlay.hidesCommitted(ns)) continue;
    for (const field of q.shard.nsFieldNames(ns, now)) {
      if (!pending.has(field.toString('latin1'))) return true;
    }
  }
  return false;
}

export type KeyType = 'string' | 'hash' | 'none';

/** A plain blob is a string; a namespace is a hash. A name that is both reads as a string. */
export function keyType(store: Store, key: Buffer): KeyType {
  if (store.exists(key)) return 'string';
  return namespaceExists(store, key) ? 'hash' : 'none';
}

/** Where a keyspace scan stands: plain keys of each shard, then namespaces of each shard. */
export interface ScanPosition {
  phase: 'plain' | 'ns';
  shard: number;
  after: Buffer | null;
}

export const SCAN_START: ScanPosition = { phase: 'plain', shard: 0, after: null };

/**
 * One step of SCAN: at least `count` candidates examined unless the scan ends. Keys present for
 * the whole scan are returned at least once (each shard is walked in key order, and pending keys
 * are merged into the range each step covers); a namespace may come back once per shard.
 */
export function scanStep(
  store: Store,
  pos: ScanPosition,
  count: number,
  types: { strings: boolean; hashes: boolean },
): { keys: Buffer[]; next: ScanPosition | null } {
  const keys: Buffer[] = [];
  const seen = new Set<string>();
  const add = (k: Buffer): void => {
    const id = k.toString('latin1');
    if (!seen.has(id)) {
      seen.add(id);
      keys.push(k);
    }
  };
  let cur: ScanPosition | null = pos;
  let examined = 0;
  while (cur !== null && examined < count) {
    const wanted = cur.phase === 'plain' ? types.strings : types.hashes;
    if (!wanted) {
      cur = nextShard(cur, store.numShards);
      continue;
    }
    const q = store.queues[cur.shard];
    const now = Date.now();
    const limit = count - examined;
    const committed = cur.phase === 'plain' ? q.shard.scanKeys(cur.after, limit, now) : q.shard.scanNamespaces(cur.after, limit, now);
    examined += Math.max(1, committed.length);
    const upper = committed.length < limit ? null : committed[committed.length - 1];
    const inRange = (k: Buffer): boolean =>
      (cur!.after === null || Buffer.compare(k, cur!.after) > 0) && (upper === null || Buffer.compare(k, upper) <= 0);
    if (cur.phase === 'plain') {
      for (const k of committed) {
        const e = q.overlay.lookup(null, k, now);
        if (e === undefined || e.value !== null) add(k);
      }
      for (const e of q.overlay.pending(null)) if (live(e, now) && inRange(e.key)) add(e.key);
    } else {
      for (const ns of committed) if (namespaceExists(store, ns)) add(ns);
      for (const ns of q.overlay.pendingNamespaces()) if (inRange(ns) && namespaceExists(store, ns)) add(ns);
    }
    cur = upper === null ? nextShard(cur, store.numShards) : { ...cur, after: upper };
  }
  return { keys, next: cur };
}

function nextShard(pos: ScanPosition, shards: number): ScanPosition | null {
  if (pos.shard + 1 < shards) return { phase: pos.phase, shard: pos.shard + 1, after: null };
  return pos.phase === 'plain' ? { phase: 'ns', shard: 0, after: null } : null;
}

/** Where an HSCAN stands: a shard and the last field returned from it. */
export interface FieldScanPosition {
  shard: number;
  after: Buffer | null;
}

/** One step of HSCAN over a namespace's fields, shard by shard in field order. */
export function fieldScanStep(
  store: Store,
  ns: Buffer,
  pos: FieldScanPosition,
  count: number,
): { fields: FieldValue[]; next: FieldScanPosition | null } {
  const fields: FieldValue[] = [];
  let cur: FieldScanPosition | null = pos;
  let examined = 0;
  while (cur !== null && examined < count) {
    const q = store.queues[cur.shard];
    const now = Date.now();
    const limit = count - examined;
    const pending = pendingByKey(q, ns);
    const rows: FieldRow[] = q.overlay.hidesCommitted(ns) ? [] : q.shard.nsFields(ns, cur.after, limit, now);
    examined += Math.max(1, rows.length);
    const upper = rows.length < limit ? null : rows[rows.length - 1].key;
    for (const row of rows) {
      if (!pending.has(row.key.toString('latin1'))) fields.push({ field: row.key, value: decodeRow(row, ns, row.key) });
    }
    const after = cur.after;
    for (const e of pending.values()) {
      if (!live(e, now)) continue;
      if ((after === null || Buffer.compare(e.key, after) > 0) && (upper === null || Buffer.compare(e.key, upper) <= 0)) {
        fields.push({ field: e.key, value: store.valueOf(q, ns, e) });
      }
    }
    cur = upper !== null ? { shard: cur.shard, after: upper } : cur.shard + 1 < store.numShards ? { shard: cur.shard + 1, after: null } : null;
  }
  return { fields, next: cur };
}

/** A random live key (plain keys first, namespaces when there are none), or null when empty. */
export function randomKey(store: Store): Buffer | null {
  const now = Date.now();
  const start = Math.floor(Math.random() * store.numShards);
  for (let i = 0; i < store.numShards; i++) {
    const q = store.queues[(start + i) % store.numShards];
    for (const e of q.overlay.pending(null)) if (live(e, now)) return e.key;
    for (let attempt = 0; attempt < 4; attempt++) {
      const k = q.shard.randomKey(now);
      if (k === undefined) break;
      const e = q.overlay.lookup(null, k, now);
      if (e === undefined || e.value !== null) return k;
    }
  }
  for (let i = 0; i < store.numShards; i++) {
    const { keys } = scanStep(store, { phase: 'ns', shard: (start + i) % store.numShards, after: null }, 16, {
      strings: false,
      hashes: true,
    });
    if (keys.length > 0) return keys[Math.floor(Math.random() * keys.length)];
  }
  return null;
}
