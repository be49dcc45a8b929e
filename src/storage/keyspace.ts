/**
 * The keyspace API: everything commands may do to keys, and the only storage module they import.
 *
 * Every rule about a value lives here once: where a read looks (pending writes, then the read
 * cache, then the committed row — `locate`), when a key is expired (at `now`, the command's one
 * clock reading), what a write does to the key's expiry (an explicit `ExpiryPolicy`, never a
 * default), and how multi-key reads merge committed rows with pending writes. Commands never see
 * overlays, queues, shards or SQL.
 *
 * A key is addressed as (ns, key): ns null is the plain key space; otherwise `key` is a field of
 * the namespace `ns` (a Redis hash to clients). A value may be a promise while it is still being
 * decoded off the event loop; order is kept because the write that produced it is already visible.
 */
import calculateSlot from 'cluster-key-slot';
import { BlobRef, expired, KEEP, type HeldValue, type OverlayEntry, type PendingValue } from './overlay.js';
import type { FieldRow, StoredValue as StoredRow } from './shard.js';
import { codecName, decodeSync } from './codecs.js';
import { CorruptValueError, decodeRow, decodeRowSync, joinAcks, printable, type Ack, type Store, type StoreStats } from './store.js';
import type { WriteQueue } from './write-queue.js';
import type { SnapshotRow } from './snapshot.js';
import { CHUNK_BYTES, chunkCount, type ChunkFile } from './chunks.js';
import { CHUNKED_CODEC } from './schema.js';
import { ValueHandle } from './value-handle.js';
import { READ_CACHE_MIN_VALUE_BYTES, type PinnedValue } from './read-cache.js';
import { stagedBlobOf } from './blob-stager.js';

export type { Ack, PendingValue, StoreStats };
export { joinAcks, ValueHandle };
export type { ChunkStream } from './value-handle.js';
export type { PinnedValue } from './read-cache.js';
export { CorruptValueError, printable } from './store.js';

/**
 * Largest chunked value a command may read whole (Lua scripts, counters, bitmaps, LCS, DUMP,
 * GETSET, HGETALL…): above it, such commands answer ValueTooLargeError's text. GET, GETRANGE,
 * STRLEN, APPEND, SETRANGE, COPY and RENAME work on values of any size.
 */
export const WHOLE_VALUE_MAX_BYTES = 64 * 1024 * 1024;

/** A command needed a whole value larger than WHOLE_VALUE_MAX_BYTES. */
export class ValueTooLargeError extends Error {}

/** APPEND / SETRANGE on a chunked value rewrite at most this many bytes of chunks in place of a whole-value rewrite. */
const PATCH_MAX_BYTES = 1024 * 1024;
/**
 * A value read from its row at least this long counts as large traffic (Store.noteLargeTraffic):
 * the size from which malloc's busy trim threshold pays (malloc-trim.ts), as for values received.
 */
const LARGE_READ_BYTES = READ_CACHE_MIN_VALUE_BYTES;

/**
 * What a write does to the key's expiry: keep the one it has (none for a new key), clear it, or
 * set this absolute time (epoch ms).
 */
export type ExpiryPolicy = 'keep' | 'clear' | { at: number };

/** A live value and its expiry (epoch ms, null for none). */
export interface Found {
  readonly value: PendingValue;
  readonly expiresAt: number | null;
}

export interface FieldValue {
  field: Buffer;
  /** The value, or null when the caller asked for names only. */
  value: PendingValue | null;
}

export type KeyType = 'string' | 'hash' | 'none';

/**
 * The fields of a namespace too large to gather in one turn (namespaceRead): their number, known
 * before the first, then bounded batches as the caller asks for them, all from one point in time.
 * release() must be called however the read ends.
 */
export interface FieldStream {
  readonly count: number;
  /** The next batch (values resolved; null when names only were asked for), or null after the last. */
  next(): Promise<{ field: Buffer; value: Buffer | null }[] | null>;
  release(): void;
}

/**
 * Namespaces with more fields than this (by the maintained counts) are read as a FieldStream;
 * smaller ones in one go, as before. Redis' own listpack limit is 128 entries by default.
 */
export const STREAMED_NAMESPACE_FIELDS = 512;
/** One step of a FieldStream reads at most so many rows, bytes of values, or milliseconds. */
const STREAM_STEP_ROWS = 500;
const STREAM_STEP_BYTES = 1024 * 1024;
const STREAM_STEP_MS = 2;

/** Where a keyspace scan stands: plain keys of each shard, then namespaces of each shard. */
export interface ScanPosition {
  phase: 'plain' | 'ns';
  shard: number;
  after: Buffer | null;
}

export const SCAN_START: ScanPosition = { phase: 'plain', shard: 0, after: null };

/** Where an HSCAN stands: a shard and the last field returned from it. */
export interface FieldScanPosition {
  shard: number;
  after: Buffer | null;
}

export const FIELD_SCAN_START: FieldScanPosition = { shard: 0, after: null };

/** What is stored about a value besides its bytes (times are epoch ms). */
export interface BlobMeta {
  /** Bytes as the client wrote them. */
  size: number;
  /** Bytes on disk after compression. */
  storedSize: number;
  /** The codec the value is stored with: none, gzip, zstd, lz4 or brotli. */
  codec: string;
  createdAt: number;
  updatedAt: number;
  expiresAt: number | null;
  /** 0 when created, +1 on every overwrite. */
  version: number;
}

/** The outcome of RENAME / RENAMENX. */
export type RenameResult = { done: true; ack: Ack } | { done: false; why: 'no-source' | 'target-exists' };

/**
 * Told when a watched key is written, deleted or flushed (WATCH). A namespace's name is its key:
 * a write to any field of it touches it. Expiry by time is not a touch: WATCH compares expiries.
 */
export interface KeyWatcher {
  keyTouched(): void;
}

/** The committed row is the truth for this key (nothing pending for it). */
const COMMITTED = Symbol('committed');

export class Keyspace {
  /** Watchers by key name (latin1). Empty unless some client WATCHes: every write checks its size only. */
  private readonly watchers = new Map<string, Set<KeyWatcher>>();

  constructor(private readonly store: Store) {}

  // ---- watching keys (WATCH) --------------------------------------------------------------------

  /** Tells `w` when the key (a plain key or a namespace of that name) is next touched. */
  watch(key: Buffer, w: KeyWatcher): void {
    const id = key.toString('latin1');
    let set = this.watchers.get(id);
    if (set === undefined) this.watchers.set(id, (set = new Set()));
    set.add(w);
  }

  unwatch(key: Buffer, w: KeyWatcher): void {
    const id = key.toString('latin1');
    const set = this.watchers.get(id);
    if (set === undefined) return;
    set.delete(w);
    if (set.size === 0) this.watchers.delete(id);
  }

  /** Every watcher of the key; called after a write to it (ns's name for a field). */
  private touch(key: Buffer): void {
    const set = this.watchers.get(key.toString('latin1'));
    // A watcher usually unwatches everything when touched: iterate over a copy.
    if (set !== undefined) for (const w of [...set]) w.keyTouched();
  }

  /**
   * Runs `f` (EXEC's commands): every write it makes is committed in one transaction and one
   * savepoint per shard, all or nothing on that shard.
   */
  atomically<T>(f: () => T): T {
    return this.store.atomically(f);
  }

  /** atomically() for work that ends after this turn (a Lua script): writes until end() commit together per shard. */
  beginAtomic(): { end(): void } {
    return this.store.beginAtomic();
  }

  /** Set on the view scripts use (withSyncDecode): committed values decode on the calling thread. */
  private syncDecode = false;

  /**
   * The same keyspace, except that committed values decode on the calling thread, so a read never
   * returns a promise unless the value is a pending write still being computed. For Lua scripts,
   * whose redis.call must answer within the script's turn.
   */
  withSyncDecode(): Keyspace {
    const view = Object.create(this) as Keyspace;
    view.syncDecode = true;
    return view;
  }

  private decodeRow(q: WriteQueue, row: StoredRow, ns: Buffer | null, key: Buffer): PendingValue {
    if (row.codec === CHUNKED_CODEC) return this.whole(this.refOf(q, ns, key), ns, key);
    if (row.data.length >= LARGE_READ_BYTES) this.store.noteLargeTraffic();
    return this.syncDecode ? decodeRowSync(row, ns, key) : decodeRow(row, ns, key);
  }

  // ---- chunked values ---------------------------------------------------------------------------

  /** The blob of a chunked row. */
  private refOf(q: WriteQueue, ns: Buffer | null, key: Buffer): BlobRef {
    const b = q.shard.blobOf(ns, key);
    if (b === undefined) throw new CorruptValueError(`stored value of key '${printable(key)}' is marked chunked but has no blob`);
    return new BlobRef(q.shard.id, b.blob_id, b.size, b.blob_stored);
  }

  private chunkFile(ref: BlobRef): ChunkFile {
    return this.store.chunkFiles[ref.shard];
  }

  /** The bytes a held value stands for: a blob is read whole, if it is not too large for that. */
  private bytes(v: HeldValue, ns: Buffer | null, key: Buffer): PendingValue {
    return v instanceof BlobRef ? this.whole(v, ns, key) : v;
  }

  private whole(ref: BlobRef, ns: Buffer | null, key: Buffer): PendingValue {
    if (ref.size > WHOLE_VALUE_MAX_BYTES) {
      throw new ValueTooLargeError(
        `value of key '${printable(ns ?? key)}' is ${ref.size} bytes; commands that need a whole value take values up to ` +
          `${WHOLE_VALUE_MAX_BYTES} bytes (GET, GETRANGE, STRLEN, APPEND, SETRANGE, COPY, RENAME take any size)`,
      );
    }
    const file = this.chunkFile(ref);
    const n = chunkCount(ref.size);
    const fail = (err: unknown): never => {
      throw new CorruptValueError(`stored value of key '${printable(key)}' cannot be read: ${(err as Error).message}`);
    };
    if (this.syncDecode) {
      const out = Buffer.allocUnsafe(ref.size);
      try {
        for (let seq = 0; seq < n; seq++) file.readSync(ref.id, seq).copy(out, seq * CHUNK_BYTES);
      } catch (err) {
        fail(err);
      }
      return out;
    }
    const handle = new ValueHandle(file, ref);
    return (async () => {
      try {
        const out = Buffer.allocUnsafe(ref.size);
        const stream = handle.stream();
        let off = 0;
        for (let piece = await stream.next(); piece !== null; piece = await stream.next()) {
          off += piece.copy(out, off);
          // Leave the event loop to other clients between chunks.
          await new Promise((resolve) => setImmediate(resolve));
        }
        return out;
      } catch (err) {
        return fail(err);
      } finally {
        handle.release();
      }
    })();
  }

  /**
   * A new blob: `ref` with `bytes` written at `offset` (APPEND, SETRANGE). Maps the chunks it does
   * not change, writes the few it does (uncompressed: this runs on the event loop); null when more
   * than PATCH_MAX_BYTES of chunks would change (the caller rewrites the whole value).
   */
  private patch(ref: BlobRef, offset: number, bytes: Buffer): BlobRef | null {
    const file = this.chunkFile(ref);
    const newSize = Math.max(ref.size, offset + bytes.length);
    const oldN = chunkCount(ref.size);
    const newN = chunkCount(newSize);
    const grows = newSize > ref.size;
    // A value that grows rewrites its old last chunk if that one is partial (it gets longer), and
    // everything after it; a full last chunk stays shared.
    const lastPartial = ref.size % CHUNK_BYTES === 0 ? oldN : oldN - 1;
    const from = grows ? Math.min(Math.floor(offset / CHUNK_BYTES), lastPartial) : Math.floor(offset / CHUNK_BYTES);
    const to = grows ? newN : Math.floor((offset + bytes.length - 1) / CHUNK_BYTES) + 1;
    if ((to - from) * CHUNK_BYTES > PATCH_MAX_BYTES) return null;
    const tail: { seq: number; encoded: { codec: number; payload: Buffer }; size: number }[] = [];
    // The row's stored total: the old one, less the chunks replaced, plus the new ones.
    let stored = ref.stored;
    for (let seq = from; seq < to; seq++) {
      const start = seq * CHUNK_BYTES;
      const len = Math.min(CHUNK_BYTES, newSize - start);
      const buf = Buffer.alloc(len);
      if (seq < oldN) {
        const old = file.readStored(ref.id, seq);
        stored -= old.data.length;
        (old.codec === 0 ? old.data : decodeSync(old.codec, old.data)).copy(buf, 0, 0, Math.min(len, ref.size - start));
      }
      const a = Math.max(offset, start);
      const b = Math.min(offset + bytes.length, start + len);
      if (a < b) bytes.copy(buf, a - start, a - offset, b - offset);
      tail.push({ seq, encoded: { codec: 0, payload: buf }, size: len });
    }
    const id = file.allocate();
    stored += file.derive(id, newSize, ref.id, from, tail, to < oldN ? { from: to, to: oldN } : undefined);
    return new BlobRef(ref.shard, id, newSize, stored);
  }

  /** What a live key holds (bytes, or a blob in a chunk file) with its expiry, or null. */
  private held(ns: Buffer | null, key: Buffer, now: number): { value: HeldValue; expiresAt: number | null } | null {
    const q = this.store.queueOf(key);
    const at = this.locate(q, ns, key, now);
    if (at === null) return null;
    if (at !== COMMITTED) {
      if (at.value !== KEEP) return at.value === null ? null : { value: at.value, expiresAt: at.expiresAt };
      const row = q.shard.getAny(ns, key);
      if (row === undefined) return null;
      return { value: row.codec === CHUNKED_CODEC ? this.refOf(q, ns, key) : this.decodeRow(q, row, ns, key), expiresAt: at.expiresAt };
    }
    const cached = q.cache.get(ns, key, now);
    if (cached !== undefined) return cached;
    const row = ns === null ? q.shard.get(key, now) : q.shard.nsGet(ns, key, now);
    if (row === undefined) return null;
    if (row.codec === CHUNKED_CODEC) return { value: this.refOf(q, ns, key), expiresAt: row.expires_at };
    return { value: this.cacheRead(q, ns, key, this.decodeRow(q, row, ns, key), row.expires_at), expiresAt: row.expires_at };
  }

  /**
   * A live value for a command that can stream or range over it: a ValueHandle when it is stored
   * in chunks (the caller must release it), otherwise its bytes, or null. In a script's view
   * (withSyncDecode) always bytes.
   */
  read(ns: Buffer | null, key: Buffer, now: number): PendingValue | ValueHandle | null {
    const h = this.held(ns, key, now);
    if (h === null) return null;
    if (h.value instanceof BlobRef && !this.syncDecode) return new ValueHandle(this.chunkFile(h.value), h.value);
    return this.bytes(h.value, ns, key);
  }

  /**
   * read() for a reply that is written and then let go of (GET, HGET): a large value in the read
   * cache comes as a PinnedValue, its bytes lent by the cache without a copy — the caller must
   * release() it once the socket has taken them.
   */
  readForReply(ns: Buffer | null, key: Buffer, now: number): PendingValue | ValueHandle | PinnedValue | null {
    if (!this.syncDecode) {
      const q = this.store.queueOf(key);
      if (q.cache.holdsLarge && this.locate(q, ns, key, now) === COMMITTED) {
        const pinned = q.cache.pin(ns, key, now);
        if (pinned !== undefined) return pinned;
      }
    }
    return this.read(ns, key, now);
  }

  /**
   * APPEND: the new length and the write's ack. On a chunked value only the last chunk and the
   * new ones are written; the key keeps its TTL.
   */
  append(ns: Buffer | null, key: Buffer, tail: Buffer, now: number): { length: number | Promise<number>; ack: Ack } {
    return this.patchOr(ns, key, now, (size) => size, tail, (v) => (v === null ? Buffer.from(tail) : Buffer.concat([v, tail])));
  }

  /** SETRANGE: `patch` written at `offset` (zero-padded); on a chunked value only the chunks it covers are written. */
  setRange(ns: Buffer | null, key: Buffer, offset: number, patch: Buffer, now: number): { length: number | Promise<number>; ack: Ack } {
    return this.patchOr(ns, key, now, () => offset, patch, (old) => {
      const current = old ?? Buffer.alloc(0);
      const out = Buffer.alloc(Math.max(current.length, offset + patch.length));
      current.copy(out);
      patch.copy(out, offset);
      return out;
    });
  }

  private patchOr(
    ns: Buffer | null,
    key: Buffer,
    now: number,
    offsetOf: (size: number) => number,
    bytes: Buffer,
    whole: (v: Buffer | null) => Buffer,
  ): { length: number | Promise<number>; ack: Ack } {
    const h = this.held(ns, key, now);
    if (h !== null && h.value instanceof BlobRef && h.value.shard === this.store.queueOf(key).shard.id && bytes.length > 0) {
      const next = this.patch(h.value, offsetOf(h.value.size), bytes);
      if (next !== null) {
        const ack = this.store.write(ns, key, next, h.expiresAt, now);
        if (this.watchers.size !== 0) this.touch(ns ?? key);
        return { length: next.size, ack };
      }
    }
    const { value, ack } = this.update(ns, key, now, whole, 'keep');
    return { length: value instanceof Promise ? value.then((v) => v.length) : value.length, ack };
  }

  /** Largest value a command may build (APPEND, SETRANGE): the server's proto_max_bulk_len. */
  get maxValueBytes(): number {
    return this.store.maxValueBytes;
  }

  // ---- one key ----------------------------------------------------------------------------------

  /**
   * The one place that decides where a key's truth is: a live pending entry, null (a pending
   * delete, or a pending write that has expired by `now`), or COMMITTED (ask the row).
   */
  private locate(q: WriteQueue, ns: Buffer | null, key: Buffer, now: number): OverlayEntry | null | typeof COMMITTED {
    const e = q.overlay.lookup(ns, key, now);
    if (e === undefined) return COMMITTED;
    return e.value === null ? null : e;
  }

  /**
   * The value of a live key, or null. A value stored in chunks is read whole only up to
   * WHOLE_VALUE_MAX_BYTES (ValueTooLargeError above): commands that can, use read().
   */
  get(ns: Buffer | null, key: Buffer, now: number): PendingValue | null {
    const h = this.held(ns, key, now);
    return h === null ? null : this.bytes(h.value, ns, key);
  }

  /** The value of a live key with its expiry, or null: what a read-modify-write starts from. */
  lookup(ns: Buffer | null, key: Buffer, now: number): Found | null {
    const h = this.held(ns, key, now);
    return h === null ? null : { value: this.bytes(h.value, ns, key), expiresAt: h.expiresAt };
  }

  exists(ns: Buffer | null, key: Buffer, now: number): boolean {
    const q = this.store.queueOf(key);
    const at = this.locate(q, ns, key, now);
    if (at !== COMMITTED) return at !== null;
    return ns === null ? q.shard.exists(key, now) : q.shard.nsExists(ns, key, now);
  }

  /** Expiry of a live key: epoch ms, null for none, undefined when the key does not exist. */
  expiry(ns: Buffer | null, key: Buffer, now: number): number | null | undefined {
    const q = this.store.queueOf(key);
    const at = this.locate(q, ns, key, now);
    if (at === null) return undefined;
    if (at !== COMMITTED) return at.expiresAt;
    return q.shard.expiry(ns, key, now);
  }

  /** The logical size of a live value without reading it (0 when absent). */
  size(ns: Buffer | null, key: Buffer, now: number): number | Promise<number> {
    const q = this.store.queueOf(key);
    const at = this.locate(q, ns, key, now);
    if (at === null) return 0;
    if (at === COMMITTED) return q.shard.size(ns, key, now) ?? 0;
    const v = at.value;
    if (v === KEEP) return q.shard.sizeAny(ns, key) ?? 0;
    if (v instanceof BlobRef) return v.size;
    return v instanceof Promise ? v.then((b) => b.length) : (v as Buffer).length;
  }

  /**
   * A live key's metadata, or null. Waits for the key's shard to commit what is pending, so the
   * answer describes the value every read sees; `now` decides liveness as for any read.
   */
  async meta(ns: Buffer | null, key: Buffer, now: number): Promise<BlobMeta | null> {
    await this.store.settle(key);
    const row = this.store.queueOf(key).shard.info(ns, key, now);
    if (row === undefined) return null;
    return {
      size: row.size,
      storedSize: row.stored,
      codec: row.codec === CHUNKED_CODEC ? 'chunked' : codecName(row.codec),
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      expiresAt: row.expires_at,
      version: row.version,
    };
  }

  /**
   * Writes a value; `expiry` says what becomes of the key's expiry. A staged value's marker
   * (blob-stager.ts: a large bulk written to chunks as it arrived) stores its blob: the key's row
   * references it, nothing is copied.
   */
  set(ns: Buffer | null, key: Buffer, value: PendingValue, expiry: ExpiryPolicy, now: number): Ack {
    const at = expiry === 'keep' ? (this.expiry(ns, key, now) ?? null) : expiry === 'clear' ? null : expiry.at;
    const staged = value instanceof Buffer ? stagedBlobOf(value) : undefined;
    const ack = this.store.write(ns, key, staged === undefined ? value : staged.ref(), at, now);
    staged?.markTaken();
    if (this.watchers.size !== 0) this.touch(ns ?? key);
    return ack;
  }

  /**
   * Read-modify-write: `f` gets the current value (null when the key is absent) and returns the
   * new one, which is written with `expiry` ('keep' keeps the TTL the key had, as APPEND does).
   * The new value is visible to every later command at once, even while the old one is still
   * decoding; it is returned with the write's ack.
   */
  update(
    ns: Buffer | null,
    key: Buffer,
    now: number,
    f: (current: Buffer | null) => Buffer,
    expiry: ExpiryPolicy,
  ): { value: PendingValue; ack: Ack } {
    const found = this.lookup(ns, key, now);
    const current = found?.value ?? null;
    const value = current instanceof Promise ? current.then(f) : f(current);
    const at = expiry === 'keep' ? (found?.expiresAt ?? null) : expiry === 'clear' ? null : expiry.at;
    const ack = this.store.write(ns, key, value, at, now);
    if (this.watchers.size !== 0) this.touch(ns ?? key);
    return { value, ack };
  }

  /** Deletes a live key; `removed` says whether there was one. */
  delete(ns: Buffer | null, key: Buffer, now: number): { removed: boolean; ack: Ack } {
    if (!this.exists(ns, key, now)) return { removed: false, ack: undefined };
    const ack = this.store.remove(ns, key);
    if (this.watchers.size !== 0) this.touch(ns ?? key);
    return { removed: true, ack };
  }

  /**
   * Sets a live key's expiry (null: persist). A time already past deletes the key, as in Redis.
   * The caller checks that the key exists.
   */
  setExpiry(ns: Buffer | null, key: Buffer, at: number | null, now: number): Ack {
    const ack = at !== null && at <= now ? this.store.remove(ns, key) : this.store.expire(ns, key, at, now);
    if (this.watchers.size !== 0) this.touch(ns ?? key);
    return ack;
  }

  /**
   * RENAME / RENAMENX of a plain key: the value and its expiry move, and the copy is committed
   * before the source's delete, so a crash in between leaves both keys, never neither.
   */
  rename(src: Buffer, dst: Buffer, now: number, onlyIfAbsent: boolean): RenameResult {
    const found = this.held(null, src, now);
    if (found === null) return { done: false, why: 'no-source' };
    if (src.equals(dst)) return onlyIfAbsent ? { done: false, why: 'target-exists' } : { done: true, ack: undefined };
    if (onlyIfAbsent && this.exists(null, dst, now)) return { done: false, why: 'target-exists' };
    const ack = this.store.move(src, dst, found.value, found.expiresAt, now);
    if (this.watchers.size !== 0) {
      this.touch(src);
      this.touch(dst);
    }
    return { done: true, ack };
  }

  /** COPY of a plain key with its expiry; null when the source is absent or (without replace) the target exists. */
  copy(src: Buffer, dst: Buffer, now: number, replace: boolean): Ack | null {
    const found = this.held(null, src, now);
    if (found === null) return null;
    if (!replace && this.exists(null, dst, now)) return null;
    const ack = this.store.write(null, dst, found.value, found.expiresAt, now);
    if (this.watchers.size !== 0) this.touch(dst);
    return ack;
  }

  // ---- namespaces -------------------------------------------------------------------------------

  /** Whether a namespace has at least one live field: then it is a key, like a Redis hash. */
  namespaceExists(ns: Buffer, now: number): boolean {
    for (const q of this.store.queues) {
      const pending = pendingByKey(q, ns);
      for (const e of pending.values()) if (live(e, now)) return true;
      // No counted field here: nothing to look for (nor dead rows of a DEL to step over).
      if (q.overlay.hidesCommitted(ns) || q.shard.nsFieldCount(ns) === 0) continue;
      for (const field of q.shard.nsFieldNames(ns, now)) {
        if (!pending.has(field.toString('latin1'))) return true;
      }
    }
    return false;
  }

  /** Every live field of a namespace, gathered from all shards. */
  namespaceFields(ns: Buffer, withValues: boolean, now: number): FieldValue[] {
    const out: FieldValue[] = [];
    for (const q of this.store.queues) {
      const pending = pendingByKey(q, ns);
      if (!q.overlay.hidesCommitted(ns) && q.shard.nsFieldCount(ns) > 0) {
        if (withValues) {
          for (const row of q.shard.nsFields(ns, null, -1, now)) {
            if (!pending.has(row.key.toString('latin1'))) out.push({ field: row.key, value: this.decodeRow(q, row, ns, row.key) });
          }
        } else {
          for (const field of q.shard.nsFieldNames(ns, now)) {
            if (!pending.has(field.toString('latin1'))) out.push({ field, value: null });
          }
        }
      }
      for (const e of pending.values()) {
        if (live(e, now)) out.push({ field: e.key, value: withValues ? this.valueOf(q, ns, e) : null });
      }
    }
    return out;
  }

  /**
   * Live fields of a namespace (HLEN) from the maintained counts: per shard one point read and the
   * expired rows not yet swept, corrected by the pending writes to the namespace.
   */
  namespaceLength(ns: Buffer, now: number): number {
    let n = 0;
    for (const q of this.store.queues) {
      const hides = q.overlay.hidesCommitted(ns);
      if (!hides) n += q.shard.nsLiveCount(ns, now);
      for (const e of q.overlay.pending(ns)) {
        if (!hides && q.shard.nsExists(ns, e.key, now)) n--;
        if (live(e, now)) n++;
      }
    }
    return n;
  }

  /**
   * Every live field of a namespace, for HGETALL / HKEYS / HVALS: gathered at once (as
   * namespaceFields) when the namespace is small, or when the caller cannot stream (a script's
   * view, or `whole`: inside EXEC); otherwise a FieldStream.
   *
   * The stream reads from one point in time, the moment of this call: each shard's committed rows
   * through a read snapshot on a connection of its own (WAL keeps it intact whatever commits
   * meanwhile), and the writes pending then, copied now. This costs one pooled connection per
   * shard for the read's duration and no wait for anyone else; holding the namespace's writers
   * back until the reply is out would make every HSET behind a slow reader wait for it. Without a
   * second connection (locking_mode EXCLUSIVE) the namespace is gathered at once, as before.
   */
  namespaceRead(ns: Buffer, withValues: boolean, now: number, whole = false): FieldValue[] | FieldStream {
    if (whole || this.syncDecode || !this.isLargeNamespace(ns)) return this.namespaceFields(ns, withValues, now);
    return this.namespaceStream(ns, withValues, now) ?? this.namespaceFields(ns, withValues, now);
  }

  /** Whether the namespace may hold more than STREAMED_NAMESPACE_FIELDS fields (maintained counts, pending writes). */
  private isLargeNamespace(ns: Buffer): boolean {
    let n = 0;
    for (const q of this.store.queues) {
      if (!q.overlay.hidesCommitted(ns)) n += q.shard.nsFieldCount(ns);
      for (const _ of q.overlay.pending(ns)) n++;
      if (n > STREAMED_NAMESPACE_FIELDS) return true;
    }
    return false;
  }

  /**
   * A read snapshot of every shard, begun in this turn, with the namespace's writes pending now and
   * its live field count at that moment; null without snapshot connections (locking_mode EXCLUSIVE).
   */
  private openNamespaceSnapshots(ns: Buffer, now: number): { shards: ShardSnapshot[]; count: number; endAll: () => void } | null {
    const held: { end: () => void }[] = [];
    const endAll = (): void => {
      for (const h of held) h.end();
    };
    // Everything up to the return runs in this turn: the snapshots and the pending writes copied
    // here describe the same moment (commits happen on this thread, between turns).
    const shards: ShardSnapshot[] = [];
    let count = 0;
    try {
      for (const q of this.store.queues) {
        const opened = this.store.openSnapshot(q.shard.id);
        if (opened === null) {
          endAll();
          return null;
        }
        held.push(opened);
        const hides = q.overlay.hidesCommitted(ns);
        const pending = pendingByKey(q, ns);
        if (!hides) count += opened.snap.liveCount(ns, now);
        for (const e of pending.values()) {
          if (!hides && opened.snap.liveRow(ns, e.key, now) !== undefined) count--;
          if (live(e, now)) count++;
        }
        shards.push({ q, snap: opened.snap, hides, pending });
      }
    } catch (err) {
      endAll();
      throw err;
    }
    return { shards, count, endAll };
  }

  private namespaceStream(ns: Buffer, withValues: boolean, now: number): FieldStream | null {
    const opened = this.openNamespaceSnapshots(ns, now);
    if (opened === null) return null;
    const { shards, count, endAll } = opened;
    let released = false;
    let shard = 0;
    let after: Buffer | null = null;
    let sent = 0;
    const step = (): { field: Buffer; value: PendingValue | null }[] => {
      const out: { field: Buffer; value: PendingValue | null }[] = [];
      while (out.length === 0 && shard < shards.length) {
        const s = shards[shard];
        if (!s.hides) {
          const rows = s.snap.page(ns, after, now, STREAM_STEP_ROWS, STREAM_STEP_BYTES, performance.now() + STREAM_STEP_MS);
          if (rows.length > 0) {
            after = rows[rows.length - 1].key;
            for (const row of rows) {
              if (s.pending.has(row.key.toString('latin1'))) continue;
              out.push({ field: row.key, value: withValues ? this.snapshotValue(s.q, ns, row) : null });
            }
            continue;
          }
        }
        for (const e of s.pending.values()) {
          if (!live(e, now)) continue;
          let value: PendingValue | null = null;
          if (withValues) {
            if (e.value === KEEP) {
              const row = s.snap.anyRow(ns, e.key);
              value = row === undefined ? null : this.snapshotValue(s.q, ns, row);
            } else value = this.bytes(e.value as HeldValue, ns, e.key);
          }
          out.push({ field: e.key, value });
        }
        shard++;
        after = null;
      }
      return out;
    };
    const release = (): void => {
      if (released) return;
      released = true;
      endAll();
    };
    return {
      count,
      next: async () => {
        if (released) throw new Error('field stream used after release');
        // Leave the event loop to other clients between steps.
        await new Promise((resolve) => setImmediate(resolve));
        const batch = step();
        if (batch.length === 0) {
          // The count was taken from the same snapshot: a difference would be a bug, and the
          // reply's length is already on its way to the client.
          if (sent !== count) throw new Error(`namespace read ${sent} fields where it counted ${count}`);
          release();
          return null;
        }
        sent += batch.length;
        if (sent > count) throw new Error(`namespace read more fields than it counted (${count})`);
        const values = await Promise.all(batch.map((f) => f.value));
        return batch.map((f, i) => ({ field: f.field, value: values[i] }));
      },
      release,
    };
  }

  /**
   * HRANDFIELD of a large namespace without reading it whole: `count` fields (null: one; negative:
   * -count picks that may repeat; positive: distinct, at most the namespace's size), from one point
   * in time (per-shard read snapshots and the writes pending now, as namespaceStream), picked in
   * steps of SAMPLE_STEP_PICKS with the event loop free in between. Each pick chooses a shard in
   * proportion to its live fields, then the field at or after a random key between the shard's
   * first and last (one index seek): every field can come back, though not with exactly equal
   * chances (a field after a wide gap of key space comes back more often). Distinct picks of
   * more than half the namespace read it whole in steps and shuffle it, as Redis does.
   * Returns null where the caller reads the namespace whole as before (small namespace, script,
   * EXEC, no snapshot connection).
   */
  namespaceSample(ns: Buffer, count: number | null, withValues: boolean, now: number, whole = false): Promise<FieldValue[]> | null {
    if (whole || this.syncDecode || !this.isLargeNamespace(ns)) return null;
    const opened = this.openNamespaceSnapshots(ns, now);
    if (opened === null) return null;
    const { shards, count: size, endAll } = opened;
    const distinct = count !== null && count >= 0;
    const wanted = count === null ? 1 : Math.abs(count);
    if (distinct && wanted * 2 > size) {
      endAll();
      return this.sampleByReadingAll(ns, Math.min(wanted, size), withValues, now);
    }
    return (async (): Promise<FieldValue[]> => {
      try {
        // Committed fields of a shard (those a pending write overrides are skipped when picked)
        // and the pending live fields, as weights for the first choice of each pick.
        const pools = shards.map((s) => (s.hides ? 0 : s.snap.liveCount(ns, now)));
        const pendingLive: { q: WriteQueue; e: OverlayEntry; snap: (typeof shards)[number]['snap'] }[] = [];
        for (const s of shards) for (const e of s.pending.values()) if (live(e, now)) pendingLive.push({ q: s.q, e, snap: s.snap });
        const total = pools.reduce((a, b) => a + b, 0) + pendingLive.length;
        // Where the namespace holds a fair share of the shard's rows, a random rowid of the table
        // (tried again when it falls on another namespace's row) picks every field alike; where it
        // is a small part, a random key between its first and last.
        const pickers = shards.map((s, i): ((snap: typeof s.snap) => SnapshotRow | undefined) | null => {
          if (pools[i] === 0) return null;
          const rowids = s.snap.rowidRange();
          if (rowids !== null && pools[i] >= (rowids.high - rowids.low + 1) * ROWID_SAMPLING_SHARE) {
            return (snap) => snap.rowAtRowid(ns, rowids.low + Math.floor(Math.random() * (rowids.high - rowids.low + 1)), now);
          }
          const range = keyRange(s.snap.rowAtOrAfter(ns, EMPTY_KEY, now)?.key, s.snap.lastKey(ns));
          return (snap) => snap.rowAtOrAfter(ns, randomKeyIn(range), now);
        });
        const out: FieldValue[] = [];
        const seen = new Set<string>();
        let attempts = 0;
        const maxAttempts = Math.ceil(wanted / ROWID_SAMPLING_SHARE) * 4 + 256;
        while (out.length < wanted && total > 0 && attempts < maxAttempts) {
          await new Promise((resolve) => setImmediate(resolve));
          const stepEnd = attempts + SAMPLE_STEP_PICKS;
          while (out.length < wanted && attempts < stepEnd && attempts < maxAttempts) {
            attempts++;
            let r = Math.floor(Math.random() * total);
            let picked: FieldValue | null = null;
            let i = 0;
            while (i < pools.length && r >= pools[i]) r -= pools[i++];
            if (i < pools.length) {
              const s = shards[i];
              const row = pickers[i]!(s.snap);
              // A field a pending write overrides is picked through its pending entry instead.
              if (row === undefined || s.pending.has(row.key.toString('latin1'))) continue;
              picked = { field: row.key, value: withValues ? this.snapshotValue(s.q, ns, row) : null };
            } else {
              const p = pendingLive[r];
              let value: PendingValue | null = null;
              if (withValues) {
                if (p.e.value === KEEP) {
                  const row = p.snap.anyRow(ns, p.e.key);
                  if (row === undefined) continue;
                  value = this.snapshotValue(p.q, ns, row);
                } else value = this.bytes(p.e.value as HeldValue, ns, p.e.key);
              }
              picked = { field: p.e.key, value };
            }
            if (distinct) {
              const id = picked.field.toString('latin1');
              if (seen.has(id)) continue;
              seen.add(id);
            }
            out.push(picked);
          }
        }
        if (out.length < Math.min(wanted, total)) {
          // Unlucky draws over very uneven key space: the rest from a read of the whole namespace.
          endAll();
          const rest = await this.sampleByReadingAll(ns, size, withValues, now);
          for (const f of rest) {
            if (out.length >= wanted) break;
            const id = f.field.toString('latin1');
            if (distinct && seen.has(id)) continue;
            seen.add(id);
            out.push(f);
          }
        }
        return out;
      } finally {
        endAll();
      }
    })();
  }

  /** `n` distinct fields at random: the namespace read in steps (namespaceRead), then shuffled. */
  private async sampleByReadingAll(ns: Buffer, n: number, withValues: boolean, now: number): Promise<FieldValue[]> {
    const read = this.namespaceRead(ns, withValues, now);
    let all: FieldValue[];
    if (Array.isArray(read)) all = read;
    else {
      all = [];
      try {
        for (let batch = await read.next(); batch !== null; batch = await read.next()) for (const f of batch) all.push(f);
      } finally {
        read.release();
      }
    }
    const k = Math.min(n, all.length);
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(Math.random() * (all.length - i));
      [all[i], all[j]] = [all[j], all[i]];
    }
    return all.slice(0, k);
  }

  /** The value of a row read through a snapshot: decoded, or read from its blob. */
  private snapshotValue(q: WriteQueue, ns: Buffer, row: SnapshotRow): PendingValue {
    if (row.codec === CHUNKED_CODEC && row.blob_id !== null) {
      return this.whole(new BlobRef(q.shard.id, row.blob_id, row.size, row.blob_stored ?? 0), ns, row.key);
    }
    return decodeRow(q.shard.checkRow(row, ns, row.key), ns, row.key);
  }

  /** Deletes every field of a namespace, on every shard (DEL of a namespace). */
  deleteNamespace(ns: Buffer): Ack {
    const ack = this.store.removeNamespace(ns);
    if (this.watchers.size !== 0) this.touch(ns);
    return ack;
  }

  /** A plain blob is a string; a namespace is a hash. A name that is both reads as a string. */
  keyType(key: Buffer, now: number): KeyType {
    if (this.exists(null, key, now)) return 'string';
    return this.namespaceExists(key, now) ? 'hash' : 'none';
  }

  // ---- the whole keyspace -----------------------------------------------------------------------

  /**
   * One step of SCAN: at least `count` candidates examined unless the scan ends. Keys present for
   * the whole scan are returned at least once (each shard is walked in key order, and pending keys
   * are merged into the range each step covers); a namespace may come back once per shard.
   */
  scanStep(
    pos: ScanPosition,
    count: number,
    types: { strings: boolean; hashes: boolean },
    now: number,
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
    const shards = this.store.numShards;
    let cur: ScanPosition | null = pos;
    let examined = 0;
    while (cur !== null && examined < count) {
      const wanted = cur.phase === 'plain' ? types.strings : types.hashes;
      if (!wanted) {
        cur = nextShard(cur, shards);
        continue;
      }
      const q = this.store.queues[cur.shard];
      const limit = count - examined;
      const committed = cur.phase === 'plain' ? q.shard.scanKeys(cur.after, limit, now) : q.shard.scanNamespaces(cur.after, limit, now);
      examined += Math.max(1, committed.length);
      const upper = committed.length < limit ? null : committed[committed.length - 1];
      const after = cur.after;
      const inRange = (k: Buffer): boolean =>
        (after === null || Buffer.compare(k, after) > 0) && (upper === null || Buffer.compare(k, upper) <= 0);
      if (cur.phase === 'plain') {
        for (const k of committed) {
          const e = q.overlay.lookup(null, k, now);
          if (e === undefined || e.value !== null) add(k);
        }
        for (const e of q.overlay.pending(null)) if (live(e, now) && inRange(e.key)) add(e.key);
      } else {
        for (const ns of committed) if (this.namespaceExists(ns, now)) add(ns);
        for (const ns of q.overlay.pendingNamespaces()) if (inRange(ns) && this.namespaceExists(ns, now)) add(ns);
      }
      cur = upper === null ? nextShard(cur, shards) : { ...cur, after: upper };
    }
    return { keys, next: cur };
  }

  /** One step of HSCAN over a namespace's fields, shard by shard in field order. */
  fieldScanStep(ns: Buffer, pos: FieldScanPosition, count: number, now: number): { fields: FieldValue[]; next: FieldScanPosition | null } {
    const fields: FieldValue[] = [];
    const shards = this.store.numShards;
    let cur: FieldScanPosition | null = pos;
    let examined = 0;
    while (cur !== null && examined < count) {
      const q = this.store.queues[cur.shard];
      const limit = count - examined;
      const pending = pendingByKey(q, ns);
      const rows: FieldRow[] = q.overlay.hidesCommitted(ns) ? [] : q.shard.nsFields(ns, cur.after, limit, now);
      examined += Math.max(1, rows.length);
      const upper = rows.length < limit ? null : rows[rows.length - 1].key;
      for (const row of rows) {
        if (!pending.has(row.key.toString('latin1'))) fields.push({ field: row.key, value: this.decodeRow(q, row, ns, row.key) });
      }
      const after = cur.after;
      for (const e of pending.values()) {
        if (!live(e, now)) continue;
        if ((after === null || Buffer.compare(e.key, after) > 0) && (upper === null || Buffer.compare(e.key, upper) <= 0)) {
          fields.push({ field: e.key, value: this.valueOf(q, ns, e) });
        }
      }
      cur = upper !== null ? { shard: cur.shard, after: upper } : cur.shard + 1 < shards ? { shard: cur.shard + 1, after: null } : null;
    }
    return { fields, next: cur };
  }

  /** A random live key (plain keys first, namespaces when there are none), or null when empty. */
  randomKey(now: number): Buffer | null {
    const shards = this.store.numShards;
    const start = Math.floor(Math.random() * shards);
    for (let i = 0; i < shards; i++) {
      const q = this.store.queues[(start + i) % shards];
      for (const e of q.overlay.pending(null)) if (live(e, now)) return e.key;
      for (let attempt = 0; attempt < 4; attempt++) {
        const k = q.shard.randomKey(now);
        if (k === undefined) break;
        const e = q.overlay.lookup(null, k, now);
        if (e === undefined || e.value !== null) return k;
      }
    }
    for (let i = 0; i < shards; i++) {
      const pos: ScanPosition = { phase: 'ns', shard: (start + i) % shards, after: null };
      const { keys } = this.scanStep(pos, 16, { strings: false, hashes: true }, now);
      if (keys.length > 0) return keys[Math.floor(Math.random() * keys.length)];
    }
    return null;
  }

  /**
   * Empties every shard (FLUSHDB / FLUSHALL). Watchers of keys that exist are touched, as Redis
   * touches only watched keys the flush removes.
   */
  flushAll(now: number): Ack {
    if (this.watchers.size !== 0) {
      const existing: Buffer[] = [];
      for (const id of this.watchers.keys()) {
        const key = Buffer.from(id, 'latin1');
        if (this.exists(null, key, now) || this.namespaceExists(key, now)) existing.push(key);
      }
      const ack = this.store.flushAll();
      for (const key of existing) this.touch(key);
      return ack;
    }
    return this.store.flushAll();
  }

  /**
   * Plain keys plus namespaces (a namespace counts once, like a Redis hash), from maintained
   * counts; what has expired is reclaimed first (Store.dbsize explains how this matches Redis).
   */
  dbsize(): Promise<number> {
    return this.store.dbsize();
  }

  /** Keys with an expiry (INFO keyspace), from maintained counts; committed rows only. */
  countExpiring(now: number): number {
    return this.store.countExpiring(now);
  }

  /** Counters and gauges of the storage engine, for INFO and metrics. */
  stats(): StoreStats {
    return this.store.stats();
  }

  /**
   * Live names in hash slot `slot` (CLUSTER GETKEYSINSLOT/COUNTKEYSINSLOT), at most `max`
   * (negative: all): plain keys, namespaces, or field names (`namespace_routing = "field"`).
   * Committed rows come from the shards' slot indexes, pending writes from the overlays, and each
   * candidate is checked as a read would check it. O(names in the slot).
   */
  slotNames(kind: 'plain' | 'namespaces' | 'fields', slot: number, max: number, now: number): Buffer[] {
    const out: Buffer[] = [];
    const seen = new Set<string>();
    const liveName = (name: Buffer): boolean =>
      kind === 'plain' ? this.exists(null, name, now) : kind === 'namespaces' ? this.namespaceExists(name, now) : true;
    const offer = (name: Buffer): boolean => {
      const id = name.toString('latin1');
      if (seen.has(id)) return true;
      seen.add(id);
      if (liveName(name)) out.push(name);
      return max < 0 || out.length < max;
    };
    for (const q of this.store.queues) {
      const pendingNames: Buffer[] = [];
      if (kind === 'plain') for (const e of q.overlay.pending(null)) pendingNames.push(e.key);
      else if (kind === 'namespaces') pendingNames.push(...q.overlay.pendingNamespaces());
      else for (const ns of q.overlay.pendingNamespaces()) for (const e of q.overlay.pending(ns)) if (live(e, now)) pendingNames.push(e.key);
      for (const name of pendingNames) if (calculateSlot(name) === slot && !offer(name)) return out;
      // Candidates the checks above drop are few (pending deletes); ask for room for them too.
      const limit = max < 0 ? -1 : max - out.length + pendingNames.length;
      for (const name of q.shard.slotNames(kind, slot, limit, now)) if (!offer(name)) return out;
    }
    return out;
  }

  /**
   * Namespaces with a live field named `field`, at most `max`: what a slot holds under that name
   * in `namespace_routing = "field"` (MIGRATE moves them). Fields are placed by their own name,
   * so one shard has them all.
   */
  fieldNamespaces(field: Buffer, max: number, now: number): Buffer[] {
    const q = this.store.queueOf(field);
    const out: Buffer[] = [];
    const seen = new Set<string>();
    const offer = (ns: Buffer): boolean => {
      const id = ns.toString('latin1');
      if (seen.has(id)) return true;
      seen.add(id);
      if (this.exists(ns, field, now)) out.push(ns);
      return out.length < max;
    };
    let pending = 0;
    for (const ns of q.overlay.pendingNamespaces()) {
      for (const e of q.overlay.pending(ns)) {
        if (!e.key.equals(field)) continue;
        pending++;
        if (!offer(ns)) return out;
      }
    }
    for (const ns of q.shard.fieldNamespaces(field, calculateSlot(field), max - out.length + pending, now)) if (!offer(ns)) return out;
    return out;
  }

  // ---- internals --------------------------------------------------------------------------------

  /** The value a pending entry stands for; KEEP (a pending expiry change) means the committed row's. */
  private valueOf(q: WriteQueue, ns: Buffer | null, entry: OverlayEntry): PendingValue | null {
    if (entry.value === null) return null;
    if (entry.value !== KEEP) return this.bytes(entry.value, ns, entry.key);
    const row = q.shard.getAny(ns, entry.key);
    return row === undefined ? null : this.decodeRow(q, row, ns, entry.key);
  }

  /** Keeps a value just read from its row in the value cache (if it wants it), and returns it. */
  private cacheRead(q: WriteQueue, ns: Buffer | null, key: Buffer, value: PendingValue, expiresAt: number | null): PendingValue {
    if (!q.cache.enabled) return value;
    if (!(value instanceof Promise)) {
      q.cache.fill(ns, key, value, expiresAt);
      return value;
    }
    // Cached only if no write reached this shard while the value was decoding.
    const epoch = q.cache.epoch;
    return value.then((v) => {
      if (q.cache.epoch === epoch) q.cache.fill(ns, key, v, expiresAt);
      return v;
    });
  }
}

/** One shard's part of a namespace read from a point in time (Keyspace.openNamespaceSnapshots). */
interface ShardSnapshot {
  q: WriteQueue;
  snap: NonNullable<ReturnType<Store['openSnapshot']>>['snap'];
  /** A pending DEL of the namespace hides the shard's committed rows. */
  hides: boolean;
  pending: Map<string, OverlayEntry>;
}

const EMPTY_KEY = Buffer.alloc(0);
/** Random picks tried (HRANDFIELD) between two turns of the event loop: one index seek each. */
const SAMPLE_STEP_PICKS = 64;
/** Least share of a shard's rows a namespace holds for a random rowid to pick its fields (else a random key). */
const ROWID_SAMPLING_SHARE = 1 / 16;
/** Bytes of key, after the common prefix, a random key is drawn over. */
const RANDOM_KEY_BYTES = 6;

/** The key space between a shard's first and last key of a namespace: their common prefix and the next bytes of each as numbers. */
interface KeyRange {
  prefix: Buffer;
  low: number;
  high: number;
}

function keyRange(first: Buffer | undefined, last: Buffer | undefined): KeyRange | null {
  if (first === undefined || last === undefined) return null;
  let p = 0;
  while (p < first.length && p < last.length && first[p] === last[p]) p++;
  const num = (k: Buffer): number => {
    let n = 0;
    for (let i = 0; i < RANDOM_KEY_BYTES; i++) n = n * 256 + (p + i < k.length ? k[p + i] : 0);
    return n;
  };
  return { prefix: first.subarray(0, p), low: num(first), high: Math.max(num(first), num(last)) };
}

/** A key drawn evenly from the range (a pick takes the first field at or after it). */
function randomKeyIn(range: KeyRange | null): Buffer {
  if (range === null) return EMPTY_KEY;
  let n = range.low + Math.floor(Math.random() * (range.high - range.low + 1));
  const tail = Buffer.alloc(RANDOM_KEY_BYTES);
  for (let i = RANDOM_KEY_BYTES - 1; i >= 0; i--) {
    tail[i] = n % 256;
    n = Math.floor(n / 256);
  }
  return Buffer.concat([range.prefix, tail]);
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

function nextShard(pos: ScanPosition, shards: number): ScanPosition | null {
  if (pos.shard + 1 < shards) return { phase: pos.phase, shard: pos.shard + 1, after: null };
  return pos.phase === 'plain' ? { phase: 'ns', shard: 0, after: null } : null;
}
