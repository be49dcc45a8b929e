/**
 * One shard: one SQLite file in WAL mode. Everything here is synchronous SQL; queuing, batching
 * and read-your-writes live in the write queue above it.
 *
 * The tables are defined, and brought up to date at open, by schema.ts.
 */
import Database from 'better-sqlite3';
import type { Statement } from 'better-sqlite3';
import { basename } from 'node:path';
import { applyMigrations, SchemaError } from './schema.js';
import { checksum, ChecksumError } from './checksum.js';
import { describeKey } from './key-names.js';
import { SweepStep, type SweepResult } from './sweep.js';
import type { NamespaceTally } from './namespace-tally.js';

export interface SqliteSettings {
  synchronous: 'OFF' | 'NORMAL' | 'FULL';
  cache_size_mb: number;
  busy_timeout_ms: number;
  mmap_size_mb: number;
  /** EXCLUSIVE: no file locks per transaction (about half the cost of a point read or a commit),
   *  but no other process can open the shard while the server runs. */
  locking_mode?: 'NORMAL' | 'EXCLUSIVE';
}

/** A stored row as reads need it: the payload, the codec it was written with and its checksum. */
export interface StoredValue {
  data: Buffer;
  codec: number;
  /** checksum.ts over `data`; null for rows written before checksums existed. */
  checksum: number | null;
}

/**
 * An SQLite error on a shard, as commands and logs see it: it names the shard file and keeps
 * SQLite's code (SQLITE_CORRUPT, SQLITE_FULL…).
 */
export class StorageError extends Error {
  override name = 'StorageError';
  constructor(
    readonly file: string,
    readonly code: string | undefined,
    readonly damage: boolean,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Codes that say the file itself is bad (not busy, not full): the shard is marked damaged and
 * stays so until it is repaired (docs/operations.md).
 */
export function isDamageCode(code: string | undefined): boolean {
  return code !== undefined && /^SQLITE_(CORRUPT|NOTADB|IOERR)/.test(code);
}

function sqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** What a damaged shard reports (INFO, /health, metrics). */
export interface ShardDamage {
  code: string;
  message: string;
  /** Epoch ms of the first error that marked it. */
  since: number;
}

/** A live row as point reads return it: the payload, its codec and its expiry (read caches keep it). */
export interface LiveRow extends StoredValue {
  expires_at: number | null;
}

/** One write as the shard applies it. `ns` null means the plain key space. */
export type ShardWrite =
  | {
      kind: 'set';
      ns: Buffer | null;
      key: Buffer;
      data: Buffer;
      codec: number;
      size: number;
      now: number;
      expiresAt: number | null;
      /** A chunked value (codec CHUNKED_CODEC, data empty): its blob in the chunk file, and its stored bytes. */
      blobId?: number | null;
      blobStored?: number | null;
    }
  | { kind: 'del'; ns: Buffer | null; key: Buffer }
  | { kind: 'delns'; ns: Buffer }
  | { kind: 'expire'; ns: Buffer | null; key: Buffer; expiresAt: number | null }
  | { kind: 'sweep'; now: number; limit: number }
  | { kind: 'swept'; result: SweepResult }
  | { kind: 'flush' }
  /** One bounded step of deleting the rows a flush set aside (purgeStep): at most `limit` rows. */
  | { kind: 'purge'; limit: number }
  /** Dead blobs whose chunks have been reclaimed from the chunk file: forget them. */
  | { kind: 'reclaimed'; ids: number[] };

/** An expired row counts as absent, so overwriting it starts a new life: version 0, new created_at. */
const UPSERT_COLUMNS = `
  data = excluded.data, codec = excluded.codec, size = excluded.size, checksum = excluded.checksum,
  updated_at = excluded.updated_at, expires_at = excluded.expires_at,
  blob_id = excluded.blob_id, blob_stored = excluded.blob_stored,
  created_at = CASE WHEN expires_at IS NOT NULL AND expires_at <= excluded.updated_at
                    THEN excluded.created_at ELSE created_at END,
  version    = CASE WHEN expires_at IS NOT NULL AND expires_at <= excluded.updated_at
                    THEN 0 ELSE version + 1 END`;

const LIVE = '(expires_at IS NULL OR expires_at > ?)';

/**
 * An ns_blobs row not taken away by a DEL of its namespace still waiting for its purge (schema
 * migration 6): its rowid is above the namespace's tombstone, if it has one. Every read of
 * ns_blobs says it; the tombstone table is tiny (empty but during purges), so this is one lookup.
 */
export const NOT_TOMBSTONED = 'ns_blobs.rowid > coalesce((SELECT upto FROM ns_tombstones WHERE ns_tombstones.namespace = ns_blobs.namespace), 0)';
const LIVE_NS = `${LIVE} AND ${NOT_TOMBSTONED}`;

/**
 * A namespace with at most this many fields in a shard is deleted there at once (one short
 * DELETE); a larger one gets a tombstone and is purged in the background (dropNamespace()).
 * The four shards' DEL commits run in one turn of the event loop: 1000 fields a shard took ~3 ms
 * of CPU each (a DEL of 3,800 fields held the loop 13–19 ms), 100 take ~0.5 ms, near a
 * tombstone's own cost.
 */
const DROP_AT_ONCE_FIELDS = 100;

/** `blobs` becomes `blobs_flushed_1` when a flush sets it aside (flush()). */
const FLUSHED_SUFFIX = '_flushed_';
/**
 * Rows one step of a DEL's purge deletes at most: each row also updates four indexes and runs its
 * triggers (500 took 6 ms at the median and up to 55 ms on the loaded 2-core machine, 200 keep it near 2 ms).
 */
const TOMBSTONE_PURGE_ROWS = 200;
/**
 * Time after which a DEL's purge step stops deleting (its commit follows): 200 rows took 1.5 ms
 * of CPU at the median and 9 ms at worst on the busy 2-core machine, and a slow disk stretches
 * that. A step is one turn of the event loop: HGETALL's steps keep to 2 ms.
 */
const TOMBSTONE_PURGE_MS = 1;
/** Rows a DEL's purge step deletes whatever the time (unless a large value ends it): the purge moves on under load. */
const TOMBSTONE_PURGE_MIN_ROWS = 20;
/** Bytes of values one purge step frees at most (besides one row, whatever its size). */
const PURGE_STEP_BYTES = 4 * 1024 * 1024;

function quoteName(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Size the WAL file is cut back to once it restarts (it may grow past it between checkpoints). */
const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

export class Shard {
  private readonly db: Database.Database;
  private readonly stmt: {
    get: Statement<[Buffer, number], LiveRow>;
    exists: Statement<[Buffer, number], number>;
    nsGet: Statement<[Buffer, Buffer, number], LiveRow>;
    nsExists: Statement<[Buffer, Buffer, number], number>;
    set: Statement<[Buffer, Buffer, number, number, number, number, number | null, number, number | null, number | null]>;
    del: Statement<[Buffer]>;
    nsSet: Statement<[Buffer, Buffer, Buffer, number, number, number, number, number | null, number, number | null, number | null]>;
    nsDel: Statement<[Buffer, Buffer]>;
    nsDrop: Statement<[Buffer]>;
    meta: Statement<[Buffer], RowMeta>;
    counts: Statement<[], ShardCounts>;
    nsChanges: Statement<[], { namespace: Buffer; delta: number }>;
  };

  /** Told when a namespace appears in or vanishes from this shard (see NamespaceTally). */
  private tally: NamespaceTally | null = null;

  /** Expired rows deleted by sweeps, and whether the last sweep hit its limit (more are waiting). */
  sweptRows = 0;
  lastSweepFull = false;
  private sweepStep: SweepStep | undefined;

  private countSwept(result: SweepResult): void {
    this.sweptRows += result.rows;
    this.lastSweepFull = result.full;
  }

  /** Set by the first error that says the file is bad; the shard keeps serving what it can. */
  damage: ShardDamage | null = null;
  /** SQLite errors seen on this shard (reads, commits, maintenance), damage or not. */
  errors = 0;
  /** Told of every SQLite error here (the store logs them, naming the file). */
  onFault: ((err: StorageError) => void) | null = null;

  /**
   * Turns an SQLite error into a StorageError naming the file, marks the shard damaged when the
   * code says the file is bad, and reports it. Errors that are already StorageErrors pass through.
   */
  fault(err: unknown): Error {
    // Already reported: a StorageError from a nested guard, or a checksum mismatch (verified()).
    if (err instanceof StorageError || err instanceof ChecksumError) return err;
    const code = sqliteCode(err);
    const message = err instanceof Error ? err.message : String(err);
    const damage = isDamageCode(code);
    const out = new StorageError(this.path, code, damage, `${basename(this.path)}: ${message}${code === undefined ? '' : ` (${code})`}`);
    this.errors++;
    if (damage) this.markDamaged(code!, message);
    this.onFault?.(out);
    return out;
  }

  private markDamaged(code: string, message: string): void {
    if (this.damage === null) this.damage = { code, message, since: Date.now() };
  }

  /**
   * A row as read, its checksum verified: a value whose bytes changed on disk is an error naming
   * the key (and marks the shard damaged), never wrong bytes. Rows from before checksums pass.
   */
  private verified<R extends StoredValue | undefined>(row: R, ns: Buffer | null, key: Buffer): R {
    if (row === undefined || row.checksum === null || checksum(row.data) === row.checksum) return row;
    const err = new ChecksumError(`stored value of ${describeKey(ns, key)} is corrupt: checksum mismatch`);
    this.errors++;
    this.markDamaged('CHECKSUM', `${err.message} in ${basename(this.path)}`);
    this.onFault?.(new StorageError(this.path, 'CHECKSUM', true, `${basename(this.path)}: ${err.message}`));
    throw err;
  }

  /** Runs one SQLite call; any error becomes a StorageError (see fault()). */
  private guard<T>(f: () => T): T {
    try {
      return f();
    } catch (err) {
      throw this.fault(err);
    }
  }

  /** Transaction control, prepared once: exec() would parse the SQL on every commit. */
  private readonly tx: Record<'beginRead' | 'begin' | 'savepoint' | 'release' | 'rollbackTo' | 'commit' | 'rollback', Statement>;

  constructor(
    readonly id: number,
    readonly path: string,
    sqlite: SqliteSettings,
  ) {
    try {
      this.db = new Database(path);
    } catch (err) {
      throw openError(path, err);
    }
    try {
      this.configure(sqlite);
      const db = this.db;
    this.tx = {
      beginRead: db.prepare('BEGIN'),
      begin: db.prepare('BEGIN IMMEDIATE'),
      savepoint: db.prepare('SAVEPOINT grp'),
      release: db.prepare('RELEASE grp'),
      rollbackTo: db.prepare('ROLLBACK TO grp'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
    };
    this.stmt = {
      get: db.prepare(`SELECT data, codec, checksum, expires_at FROM blobs WHERE key = ? AND ${LIVE}`),
      exists: db.prepare<[Buffer, number], number>(`SELECT 1 FROM blobs WHERE key = ? AND ${LIVE}`).pluck(),
      nsGet: db.prepare(`SELECT data, codec, checksum, expires_at FROM ns_blobs WHERE namespace = ? AND key = ? AND ${LIVE_NS}`),
      nsExists: db.prepare<[Buffer, Buffer, number], number>(`SELECT 1 FROM ns_blobs WHERE namespace = ? AND key = ? AND ${LIVE_NS}`).pluck(),
      set: db.prepare(
        `INSERT INTO blobs (key, data, codec, size, created_at, updated_at, expires_at, version, checksum, blob_id, blob_stored)
         VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET ${UPSERT_COLUMNS}`,
      ),
      del: db.prepare('DELETE FROM blobs WHERE key = ?'),
      nsSet: db.prepare(
        `INSERT INTO ns_blobs (namespace, key, data, codec, size, created_at, updated_at, expires_at, version, checksum, blob_id, blob_stored)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)
         ON CONFLICT (namespace, key) DO UPDATE SET ${UPSERT_COLUMNS}`,
      ),
      nsDel: db.prepare('DELETE FROM ns_blobs WHERE namespace = ? AND key = ?'),
      nsDrop: db.prepare('DELETE FROM ns_blobs WHERE namespace = ?'),
      meta: db.prepare('SELECT created_at, updated_at, expires_at, version FROM blobs WHERE key = ?'),
      counts: db.prepare('SELECT keys, expires, fields, logical, stored FROM stats WHERE id = 0'),
      nsChanges: db.prepare('DELETE FROM ns_changes RETURNING namespace, delta'),
    };
    // DELs of namespaces whose purge a stop (or a crash) interrupted: the purger resumes them.
    this.tombstoned = db.prepare('SELECT 1 FROM ns_tombstones LIMIT 1').get() !== undefined;
    } catch (err) {
      // A refused file stays closed: with locking_mode EXCLUSIVE this connection would lock it.
      this.db.close();
      throw err instanceof SchemaError ? err : openError(path, err);
    }
  }

  private configure(sqlite: SqliteSettings): void {
    // auto_vacuum only takes effect before the first table exists, so it comes first. An exclusive
    // lock is taken before WAL starts so the WAL index lives in heap memory, not a shared file.
    this.db.pragma('auto_vacuum = INCREMENTAL');
    this.db.pragma(`locking_mode = ${sqlite.locking_mode ?? 'NORMAL'}`);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${sqlite.synchronous}`);
    this.db.pragma(`cache_size = ${-Math.max(1, sqlite.cache_size_mb) * 1024}`);
    this.db.pragma(`busy_timeout = ${sqlite.busy_timeout_ms}`);
    this.db.pragma(`mmap_size = ${sqlite.mmap_size_mb * 1024 * 1024}`);
    this.db.pragma('temp_store = MEMORY');
    // The counts are kept by triggers: a row that INSERT OR REPLACE replaces must fire its delete trigger.
    this.db.pragma('recursive_triggers = ON');
    // After a checkpoint lets the WAL restart, cut the file back rather than keep its peak size.
    this.db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
    applyMigrations(this.db, this.path);
  }

  get(key: Buffer, now: number): LiveRow | undefined {
    return this.guard(() => {
      this.shareReadTxn();
      return this.verified(this.stmt.get.get(key, now), null, key);
    });
  }

  exists(key: Buffer, now: number): boolean {
    return this.guard(() => {
      this.shareReadTxn();
      return this.stmt.exists.get(key, now) !== undefined;
    });
  }

  nsGet(ns: Buffer, key: Buffer, now: number): LiveRow | undefined {
    return this.guard(() => {
      this.shareReadTxn();
      return this.verified(this.stmt.nsGet.get(ns, key, now), ns, key);
    });
  }

  nsExists(ns: Buffer, key: Buffer, now: number): boolean {
    return this.guard(() => {
      this.shareReadTxn();
      return this.stmt.nsExists.get(ns, key, now) !== undefined;
    });
  }

  /**
   * Reads in one turn of the event loop share one read transaction. A statement outside a
   * transaction starts and ends its own, taking and releasing locks on the WAL index each time,
   * which costs more than a point read itself (measured: 14 µs per read alone, 6 µs in batches).
   * Every write to this connection is ours and ends the read transaction first, so a read never
   * misses a commit; the maintenance thread only deletes rows that reads already treat as absent.
   */
  private shareReadTxn(): void {
    if (this.readTxnOpen || this.db.inTransaction) return;
    this.tx.beginRead.run();
    this.readTxnOpen = true;
    setImmediate(this.endReadTxn);
  }

  private readTxnOpen = false;

  /**
   * Ends the shared read transaction: before any write, and at the end of the turn. It runs from
   * setImmediate, where nothing would catch an error: a COMMIT that fails (a damaged page read in
   * this turn can make it return SQLITE_CORRUPT) is reported, rolled back and never thrown.
   */
  private readonly endReadTxn = (): void => {
    if (!this.readTxnOpen) return;
    this.readTxnOpen = false;
    if (!this.db.open || !this.db.inTransaction) return;
    try {
      this.tx.commit.run();
    } catch (err) {
      this.fault(err);
      try {
        if (this.db.inTransaction) this.tx.rollback.run();
      } catch (again) {
        this.fault(again);
      }
    }
  };

  /** The blob of a chunked row (live or not: the caller has decided the key is live), or undefined. */
  blobOf(ns: Buffer | null, key: Buffer): { blob_id: number; size: number; blob_stored: number } | undefined {
    return this.guard(() => {
      this.shareReadTxn();
      if (ns === null) {
        return this.prep<{ blob_id: number; size: number; blob_stored: number }>(
          'SELECT blob_id, size, blob_stored FROM blobs WHERE key = ? AND blob_id IS NOT NULL',
        ).get(key);
      }
      return this.prep<{ blob_id: number; size: number; blob_stored: number }>(
        `SELECT blob_id, size, blob_stored FROM ns_blobs WHERE namespace = ? AND key = ? AND blob_id IS NOT NULL AND ${NOT_TOMBSTONED}`,
      ).get(ns, key);
    });
  }

  /** Up to `limit` blobs no row references any more, oldest first (their chunks wait for reclamation). */
  deadBlobs(limit: number): number[] {
    return this.guard(() => {
      this.shareReadTxn();
      return this.prep<number>('SELECT blob_id FROM dead_blobs ORDER BY blob_id LIMIT ?').pluck().all(limit);
    });
  }

  /** Whether a row references blob `id`, or it is recorded as dead (the start-up orphan check). */
  knowsBlob(id: number): boolean {
    return this.guard(() => {
      this.shareReadTxn();
      return (
        this.prep('SELECT 1 FROM blobs WHERE blob_id = ? UNION ALL SELECT 1 FROM ns_blobs WHERE blob_id = ? UNION ALL SELECT 1 FROM dead_blobs WHERE blob_id = ? LIMIT 1').get(id, id, id) !==
        undefined
      );
    });
  }

  /** The largest blob id this file mentions (rows or dead_blobs): new ids start above it. */
  maxBlobId(): number {
    return this.guard(() => {
      this.shareReadTxn();
      return Number(
        this.prep<number>(
          'SELECT max(coalesce((SELECT max(blob_id) FROM blobs), 0), coalesce((SELECT max(blob_id) FROM ns_blobs), 0), coalesce((SELECT max(blob_id) FROM dead_blobs), 0))',
        ).pluck().get(),
      );
    });
  }

  /** Metadata of a plain key, expired or not; for tests and introspection. */
  meta(key: Buffer): RowMeta | undefined {
    return this.guard(() => this.stmt.meta.get(key));
  }

  /** Everything stored about a live row but its value: for introspection (the value is not read). */
  info(ns: Buffer | null, key: Buffer, now: number): RowInfo | undefined {
    return this.guard(() => {
      this.shareReadTxn();
      const cols = 'size, coalesce(blob_stored, length(data)) AS stored, codec, created_at, updated_at, expires_at, version';
      if (ns === null) return this.prep<RowInfo>(`SELECT ${cols} FROM blobs WHERE key = ? AND ${LIVE}`).get(key, now);
      return this.prep<RowInfo>(`SELECT ${cols} FROM ns_blobs WHERE namespace = ? AND key = ? AND ${LIVE_NS}`).get(ns, key, now);
    });
  }

  /**
   * Rows and byte sums of the committed rows, kept by triggers in the same transaction as every
   * write (schema migration 2): one point read, whatever the size of the data set. Rows that have
   * expired but wait for the sweeper are still counted, as Redis counts keys it has not reclaimed.
   */
  counts(): ShardCounts {
    this.shareReadTxn();
    return this.stmt.counts.get() ?? { keys: 0, expires: 0, fields: 0, logical: 0, stored: 0 };
  }

  /** Rows, bytes as clients wrote them, and bytes as stored (after compression); committed rows only. */
  byteTotals(): ByteTotals {
    const c = this.counts();
    return { rows: c.keys + c.fields, logical: c.logical, stored: c.stored };
  }

  /**
   * Reports this shard's namespaces to `tally` (one read of ns_counts, at start) and from then on
   * every namespace that appears in or vanishes from the shard, after each commit.
   */
  attachTally(tally: NamespaceTally): void {
    this.endReadTxn();
    this.tally = tally;
    this.tx.begin.run();
    try {
      for (const ns of this.db.prepare<[], Buffer>('SELECT namespace FROM ns_counts').pluck().iterate()) tally.add(ns, 1, this.id);
      // Left by commits before a restart: ns_counts already holds their effect.
      this.db.prepare('DELETE FROM ns_changes').run();
      this.tx.commit.run();
    } catch (err) {
      if (this.db.inTransaction) this.tx.rollback.run();
      throw err;
    }
  }

  /** Takes this shard's namespaces out of the tally it reports to (before it is closed for good). */
  detachTally(): void {
    const tally = this.tally;
    if (tally === null) return;
    tally.dropShard(this.id);
    this.tally = null;
  }

  /** Hands the namespace changes written by triggers (ours or the maintenance thread's) to the tally; inside a write transaction. */
  private passNamespaceChanges(): void {
    const tally = this.tally;
    if (tally === null) return;
    // A flush in this transaction emptied ns_changes and ns_counts: the shard holds none of the
    // namespaces it held before, and the changes left are those of writes after the flush.
    if (this.flushedInTxn) tally.dropShard(this.id);
    this.flushedInTxn = false;
    for (const c of this.stmt.nsChanges.all()) tally.add(c.namespace, c.delta, this.id);
  }

  // Keyspace reads (SCAN, namespaces as hashes, sizes). Prepared on first use: most servers never
  // run most of them, and start-up should not pay for them.
  private readonly lazy = new Map<string, Statement>();

  private prep<R>(sql: string): Statement<unknown[], R> {
    let stmt = this.lazy.get(sql);
    if (stmt === undefined) {
      stmt = this.db.prepare(sql);
      this.lazy.set(sql, stmt);
    }
    return stmt as Statement<unknown[], R>;
  }

  /** A plain key's row with its expiry, for commands that carry the TTL along (RENAME). */
  getWithExpiry(key: Buffer, now: number): (StoredValue & { expires_at: number | null }) | undefined {
    const row = this.guard(() =>
      this.prep<StoredValue & { expires_at: number | null }>(
        `SELECT data, codec, checksum, expires_at FROM blobs WHERE key = ? AND ${LIVE}`,
      ).get(key, now),
    );
    return this.verified(row, null, key);
  }

  /** A row whatever its expiry: the overlay has already decided the key is live (KEEP entries). */
  getAny(ns: Buffer | null, key: Buffer): StoredValue | undefined {
    const row = this.guard(() => {
      if (ns === null) return this.prep<StoredValue>('SELECT data, codec, checksum FROM blobs WHERE key = ?').get(key);
      return this.prep<StoredValue>(`SELECT data, codec, checksum FROM ns_blobs WHERE namespace = ? AND key = ? AND ${NOT_TOMBSTONED}`).get(ns, key);
    });
    return this.verified(row, ns, key);
  }

  sizeAny(ns: Buffer | null, key: Buffer): number | undefined {
    return this.guard(() => {
      if (ns === null) return this.prep<number>('SELECT size FROM blobs WHERE key = ?').pluck().get(key);
      return this.prep<number>(`SELECT size FROM ns_blobs WHERE namespace = ? AND key = ? AND ${NOT_TOMBSTONED}`).pluck().get(ns, key);
    });
  }

  /** The expiry of a live row: null for none, undefined when there is no live row. */
  expiry(ns: Buffer | null, key: Buffer, now: number): number | null | undefined {
    const row = this.guard(() =>
      ns === null
        ? this.prep<{ e: number | null }>(`SELECT expires_at AS e FROM blobs WHERE key = ? AND ${LIVE}`).get(key, now)
        : this.prep<{ e: number | null }>(`SELECT expires_at AS e FROM ns_blobs WHERE namespace = ? AND key = ? AND ${LIVE_NS}`).get(ns, key, now),
    );
    return row === undefined ? undefined : row.e;
  }

  /** Whether any row has expired and waits for the sweeper (an index lookup on each table). */
  hasExpired(now: number): boolean {
    const q = (table: string): boolean =>
      this.prep(`SELECT 1 FROM ${table} WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT 1`).get(now) !== undefined;
    return this.guard(() => q('blobs') || q('ns_blobs'));
  }

  /** The logical size of a value without reading it (the size column precedes the data). */
  size(ns: Buffer | null, key: Buffer, now: number): number | undefined {
    return this.guard(() => {
      if (ns === null) return this.prep<number>(`SELECT size FROM blobs WHERE key = ? AND ${LIVE}`).pluck().get(key, now);
      return this.prep<number>(`SELECT size FROM ns_blobs WHERE namespace = ? AND key = ? AND ${LIVE_NS}`).pluck().get(ns, key, now);
    });
  }

  /** Up to `limit` live plain keys after `after` (null: from the start), in key order. */
  scanKeys(after: Buffer | null, limit: number, now: number): Buffer[] {
    return this.guard(() => {
      if (after === null) return this.prep<Buffer>(`SELECT key FROM blobs WHERE ${LIVE} ORDER BY key LIMIT ?`).pluck().all(now, limit);
      return this.prep<Buffer>(`SELECT key FROM blobs WHERE key > ? AND ${LIVE} ORDER BY key LIMIT ?`).pluck().all(after, now, limit);
    });
  }

  /** Up to `limit` namespaces with a live field after `after`, in order. */
  scanNamespaces(after: Buffer | null, limit: number, now: number): Buffer[] {
    return this.guard(() => {
      if (after === null) {
        return this.prep<Buffer>(`SELECT DISTINCT namespace FROM ns_blobs WHERE ${LIVE_NS} ORDER BY namespace LIMIT ?`).pluck().all(now, limit);
      }
      return this.prep<Buffer>(
        `SELECT DISTINCT namespace FROM ns_blobs WHERE namespace > ? AND ${LIVE_NS} ORDER BY namespace LIMIT ?`,
      ).pluck().all(after, now, limit);
    });
  }

  /**
   * Names in hash slot `slot` (schema migration 4's indexes): plain keys, namespaces, or field
   * names. Keys and fields are live rows; a namespace is listed while it has a field row (its
   * liveness is the keyspace's to check). O(names in the slot), never a scan of the table.
   */
  slotNames(kind: 'plain' | 'namespaces' | 'fields', slot: number, limit: number, now: number): Buffer[] {
    this.shareReadTxn();
    if (kind === 'plain') return this.prep<Buffer>(`SELECT key FROM blobs WHERE slot = ? AND ${LIVE} LIMIT ?`).pluck().all(slot, now, limit);
    if (kind === 'namespaces') return this.prep<Buffer>('SELECT namespace FROM ns_counts WHERE slot = ? LIMIT ?').pluck().all(slot, limit);
    return this.prep<Buffer>(`SELECT DISTINCT key FROM ns_blobs WHERE slot = ? AND ${LIVE_NS} LIMIT ?`).pluck().all(slot, now, limit);
  }

  /**
   * Namespaces holding a live field named `field` (whose slot is `slot`), for MIGRATE in
   * `namespace_routing = "field"`: found through the slot index, O(fields in the slot).
   */
  fieldNamespaces(field: Buffer, slot: number, limit: number, now: number): Buffer[] {
    this.shareReadTxn();
    return this.prep<Buffer>(`SELECT namespace FROM ns_blobs WHERE slot = ? AND key = ? AND ${LIVE} LIMIT ?`).pluck().all(slot, field, now, limit);
  }

  /** Live fields of a namespace in this shard, in order; `after` continues a scan. */
  nsFields(ns: Buffer, after: Buffer | null, limit: number, now: number): FieldRow[] {
    const rows = this.guard((): FieldRow[] => {
      if (after === null) {
        return this.prep<FieldRow>(
          `SELECT key, data, codec, checksum FROM ns_blobs WHERE namespace = ? AND ${LIVE_NS} ORDER BY key LIMIT ?`,
        ).all(ns, now, limit);
      }
      return this.prep<FieldRow>(
        `SELECT key, data, codec, checksum FROM ns_blobs WHERE namespace = ? AND key > ? AND ${LIVE_NS} ORDER BY key LIMIT ?`,
      ).all(ns, after, now, limit);
    });
    for (const row of rows) this.verified(row, ns, row.key);
    return rows;
  }

  /**
   * Fields of a namespace in this shard, live or expired-but-unswept: the count ns_counts keeps
   * (one point read), an upper bound of the live ones.
   */
  nsFieldCount(ns: Buffer): number {
    return this.guard(() => {
      this.shareReadTxn();
      return this.prep<number>('SELECT fields FROM ns_counts WHERE namespace = ?').pluck().get(ns) ?? 0;
    });
  }

  /**
   * Live fields of a namespace in this shard: the maintained count less the rows that have
   * expired and wait for the sweeper (found by the expiry index; few while the sweeper keeps up).
   */
  nsLiveCount(ns: Buffer, now: number): number {
    return this.guard(() => {
      const all = this.nsFieldCount(ns);
      if (all === 0) return 0;
      const expired = this.prep<number>(
        `SELECT count(*) FROM ns_blobs INDEXED BY ns_blobs_expires_at WHERE expires_at IS NOT NULL AND expires_at <= ? AND namespace = ? AND ${NOT_TOMBSTONED}`,
      )
        .pluck()
        .get(now, ns);
      return all - (expired ?? 0);
    });
  }

  /** A row read elsewhere (a snapshot connection), its checksum verified as this shard's reads are. */
  checkRow<R extends StoredValue>(row: R, ns: Buffer | null, key: Buffer): R {
    return this.verified(row, ns, key);
  }

  /** Live field names of a namespace in this shard, without their values. */
  *nsFieldNames(ns: Buffer, now: number): IterableIterator<Buffer> {
    const it = this.guard(() => this.prep<Buffer>(`SELECT key FROM ns_blobs WHERE namespace = ? AND ${LIVE_NS}`).pluck().iterate(ns, now));
    try {
      for (;;) {
        const next = this.guard(() => it.next());
        if (next.done === true) return;
        yield next.value;
      }
    } finally {
      // A caller that stops early (a namespace found live) must free the statement for the next one.
      it.return?.();
    }
  }

  /** A live plain key near a random row, or undefined when the table has none. */
  randomKey(now: number): Buffer | undefined {
    return this.guard(() => {
      const max = this.prep<number | null>('SELECT max(rowid) FROM blobs').pluck().get();
      if (max === null || max === undefined) return undefined;
      const from = 1 + Math.floor(Math.random() * max);
      const stmt = this.prep<Buffer>(`SELECT key FROM blobs WHERE rowid >= ? AND ${LIVE} ORDER BY rowid LIMIT 1`).pluck();
      return stmt.get(from, now) ?? stmt.get(0, now);
    });
  }

  /**
   * Applies groups of writes in one transaction. Each group is a savepoint: a group that fails is
   * rolled back alone and reported in the returned array (index = group), the others commit.
   * Throws if the commit itself fails, in which case nothing was written.
   */
  applyGroups(groups: readonly (readonly ShardWrite[])[]): (Error | null)[] {
    const results: (Error | null)[] = [];
    const tx = this.tx;
    // A batch of nothing but offloaded sweep results writes nothing: no transaction to pay for.
    // (Unless the worker deleted rows: their namespace changes are handed over in a transaction.)
    if (groups.every((g) => g.every((w) => w.kind === 'swept' && w.result.rows === 0))) {
      for (const g of groups) {
        for (const w of g) this.apply(w);
        results.push(null);
      }
      return results;
    }
    this.endReadTxn();
    tx.begin.run();
    try {
      for (const group of groups) {
        // A single statement is already atomic on its own (a failed one is undone by SQLite
        // without ending the transaction), so only groups of several statements need a
        // savepoint: several writes, or a flush (two DELETEs: if the second failed unguarded,
        // the first would commit and half the shard would be flushed).
        const guarded = group.length > 1 || group[0].kind === 'flush';
        if (guarded) tx.savepoint.run();
        const flushedBefore = this.flushedInTxn;
        try {
          for (const w of group) this.apply(w);
          if (guarded) tx.release.run();
          results.push(null);
        } catch (err) {
          // Some errors (RAISE(ROLLBACK), SQLITE_FULL, I/O errors) make SQLite roll back the whole
          // transaction: there is no savepoint left to return to, and every group is lost. Report
          // the real reason rather than "no such savepoint".
          if (!this.db.inTransaction) throw err;
          this.flushedInTxn = flushedBefore;
          if (guarded) {
            tx.rollbackTo.run();
            tx.release.run();
          }
          results.push(err instanceof Error ? err : new Error(String(err)));
        }
      }
      this.passNamespaceChanges();
      tx.commit.run();
    } catch (err) {
      this.flushedInTxn = false;
      const e = this.fault(err);
      try {
        if (this.db.inTransaction) tx.rollback.run();
      } catch (again) {
        this.fault(again);
      }
      throw e;
    }
    for (const err of results) if (err !== null) this.fault(err);
    return results;
  }


  private apply(w: ShardWrite): void {
    switch (w.kind) {
      case 'set':
        if (w.ns === null) {
          this.stmt.set.run(w.key, w.data, w.codec, w.size, w.now, w.now, w.expiresAt, checksum(w.data), w.blobId ?? null, w.blobStored ?? null);
        } else if (this.tombstoned && this.tombstoneOf(w.ns) !== undefined) {
          this.setOverTombstone(w);
        } else {
          this.stmt.nsSet.run(w.ns, w.key, w.data, w.codec, w.size, w.now, w.now, w.expiresAt, checksum(w.data), w.blobId ?? null, w.blobStored ?? null);
        }
        return;
      case 'reclaimed':
        for (const id of w.ids) this.prep('DELETE FROM dead_blobs WHERE blob_id = ?').run(id);
        return;
      case 'del':
        if (w.ns === null) this.stmt.del.run(w.key);
        else this.stmt.nsDel.run(w.ns, w.key);
        return;
      case 'delns':
        this.dropNamespace(w.ns);
        return;
      case 'sweep':
        this.countSwept((this.sweepStep ??= new SweepStep(this.db)).run(w.now, w.limit));
        return;
      case 'swept':
        // The maintenance worker ran this step on its own connection; only the accounting is left.
        this.countSwept(w.result);
        return;
      case 'expire':
        if (w.ns === null) this.prep('UPDATE blobs SET expires_at = ? WHERE key = ?').run(w.expiresAt, w.key);
        else this.prep('UPDATE ns_blobs SET expires_at = ? WHERE namespace = ? AND key = ?').run(w.expiresAt, w.ns, w.key);
        return;
      case 'flush':
        this.flush();
        return;
      case 'purge':
        this.purgeStep(w.limit);
        return;
    }
  }

  /** Set by flush() until the transaction's namespace changes are handed to the tally. */
  private flushedInTxn = false;

  /**
   * Whether ns_tombstones may have a row: writes to a namespace then look for its tombstone. Set
   * when one is written (and at open), cleared only by hasPurgeWork() finding none committed.
   */
  private tombstoned = false;

  /** The tombstone of a namespace (the largest rowid its DEL took away), if it has one. */
  private tombstoneOf(ns: Buffer): number | undefined {
    return this.prep<number>('SELECT upto FROM ns_tombstones WHERE namespace = ?').pluck().get(ns);
  }

  /**
   * DEL of a namespace. A few fields are deleted at once; more are taken away in O(1): a tombstone
   * (schema migration 6) makes every read skip the namespace's rows up to the largest rowid of the
   * table now, the counts drop by the namespace's fields at once (ns_counts' row goes, so the tally
   * hears that the namespace vanished), and purgeStep() deletes the rows later in bounded steps.
   * A second DEL while the first purge runs raises the tombstone over the fields written since.
   */
  private dropNamespace(ns: Buffer): void {
    const fields = this.prep<number>('SELECT fields FROM ns_counts WHERE namespace = ?').pluck().get(ns) ?? 0;
    if (fields === 0) return;
    if (fields <= DROP_AT_ONCE_FIELDS && (!this.tombstoned || this.tombstoneOf(ns) === undefined)) {
      this.stmt.nsDrop.run(ns);
      return;
    }
    const upto = this.prep<number>('SELECT max(rowid) FROM ns_blobs').pluck().get() ?? 0;
    this.prep('INSERT INTO ns_tombstones (namespace, upto) VALUES (?, ?) ON CONFLICT (namespace) DO UPDATE SET upto = excluded.upto').run(ns, upto);
    this.prep('UPDATE stats SET fields = fields - ? WHERE id = 0').run(fields);
    this.prep('DELETE FROM ns_counts WHERE namespace = ?').run(ns);
    this.tombstoned = true;
  }

  /**
   * A field written to a namespace whose DEL still waits for its purge: the dead row of the same
   * name goes first (an upsert would revive it under the tombstone), and the new row takes a rowid
   * above the tombstone, which the purge never reaches, whatever rows have been deleted since.
   */
  private setOverTombstone(w: ShardWrite & { kind: 'set' }): void {
    const ns = w.ns!;
    this.prep('DELETE FROM ns_blobs WHERE namespace = ? AND key = ? AND rowid <= (SELECT upto FROM ns_tombstones WHERE namespace = ?)').run(ns, w.key, ns);
    this.prep(
      `INSERT INTO ns_blobs (rowid, namespace, key, data, codec, size, created_at, updated_at, expires_at, version, checksum, blob_id, blob_stored)
       VALUES (max(coalesce((SELECT max(rowid) FROM ns_blobs), 0), (SELECT upto FROM ns_tombstones WHERE namespace = ?)) + 1,
               ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)
       ON CONFLICT (namespace, key) DO UPDATE SET ${UPSERT_COLUMNS}`,
    ).run(ns, ns, w.key, w.data, w.codec, w.size, w.now, w.now, w.expiresAt, checksum(w.data), w.blobId ?? null, w.blobStored ?? null);
  }

  /**
   * Deletes up to `limit` rows (about PURGE_STEP_BYTES of values, for about TOMBSTONE_PURGE_MS)
   * of one tombstoned namespace; once none is left under its tombstone, the tombstone goes. The
   * rows are found by the primary key's range of the namespace: fields written after the DEL are
   * stepped over.
   */
  private purgeTombstoned(limit: number): void {
    const t = this.prep<{ namespace: Buffer; upto: number }>('SELECT namespace, upto FROM ns_tombstones LIMIT 1').get();
    if (t === undefined) return;
    const rows = this.prep<{ id: number; n: number }>(
      'SELECT rowid AS id, coalesce(blob_stored, length(data)) AS n FROM ns_blobs WHERE namespace = ? AND rowid <= ? LIMIT ?',
    ).all(t.namespace, t.upto, Math.min(limit, TOMBSTONE_PURGE_ROWS));
    if (rows.length === 0) {
      this.prep('DELETE FROM ns_tombstones WHERE namespace = ?').run(t.namespace);
      return;
    }
    const del = this.prep('DELETE FROM ns_blobs WHERE rowid = ?');
    const deadline = performance.now() + TOMBSTONE_PURGE_MS;
    let bytes = 0;
    let deleted = 0;
    for (const r of rows) {
      if (bytes > 0 && bytes + r.n > PURGE_STEP_BYTES) break;
      if (deleted >= TOMBSTONE_PURGE_MIN_ROWS && performance.now() >= deadline) break;
      bytes += r.n;
      del.run(r.id);
      deleted++;
    }
  }

  /**
   * Empties the shard at the cost of its schema, not of its rows: the three keyed tables (rows,
   * fields, namespace counts) are renamed aside as `<table>_flushed_<n>` and empty ones take their
   * place, with the same columns, indexes and triggers (copied from sqlite_master, so they are
   * whatever the migrations made them). Readers see an empty shard once this transaction commits;
   * the rows set aside are deleted later in bounded steps (purgeStep), and a crash meanwhile
   * leaves them in tables no read looks at, purged after the restart: nothing comes back.
   *
   * What it costs on the event loop: recording the dead blobs (partial index: the chunked rows
   * only), and dropping the old tables' named indexes, which SQLite cannot rename and the new
   * tables need the names of (O(pages of those indexes), a small part of the data). Measured in
   * docs/benchmarks.md (bench/bounded-work.mjs).
   */
  private flush(): void {
    const db = this.db;
    // The blob triggers go with the tables: every blob the flush drops is recorded here, at once.
    db.exec(`INSERT OR IGNORE INTO dead_blobs (blob_id)
      SELECT blob_id FROM blobs WHERE blob_id IS NOT NULL UNION SELECT blob_id FROM ns_blobs WHERE blob_id IS NOT NULL`);
    const objects = db
      .prepare<[], { type: string; name: string; tbl_name: string; sql: string }>(
        `SELECT type, name, tbl_name, sql FROM sqlite_master
         WHERE tbl_name IN ('blobs', 'ns_blobs', 'ns_counts') AND sql IS NOT NULL ORDER BY rowid`,
      )
      .all();
    const n = this.nextFlushNumber();
    // Triggers first (some name the other tables in their bodies, which a rename would rewrite to
    // point at the old ones), then the indexes, whose names the new tables take.
    for (const o of objects) if (o.type === 'trigger') db.exec(`DROP TRIGGER ${quoteName(o.name)}`);
    for (const o of objects) if (o.type === 'index') db.exec(`DROP INDEX ${quoteName(o.name)}`);
    for (const o of objects) if (o.type === 'table') db.exec(`ALTER TABLE ${quoteName(o.name)} RENAME TO ${quoteName(`${o.name}${FLUSHED_SUFFIX}${n}`)}`);
    for (const type of ['table', 'index', 'trigger']) for (const o of objects) if (o.type === type) db.exec(o.sql);
    // Changes of writes before the flush in this transaction describe rows that are gone.
    // The tombstones spoke of rowids of the table set aside: its purge deletes their rows too.
    db.exec('UPDATE stats SET keys = 0, expires = 0, fields = 0, logical = 0, stored = 0; DELETE FROM ns_changes; DELETE FROM ns_tombstones;');
    this.flushedInTxn = true;
  }

  /** The next free number for a set of flushed tables (several flushes may wait for their purge). */
  private nextFlushNumber(): number {
    let max = 0;
    for (const t of this.flushedTables()) max = Math.max(max, Number(t.slice(t.lastIndexOf('_') + 1)));
    return max + 1;
  }

  /** Tables a flush set aside and that still wait for their purge, oldest first. */
  private flushedTables(): string[] {
    return this.db
      .prepare<[], string>(`SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB '*${FLUSHED_SUFFIX}[0-9]*' ORDER BY rowid`)
      .pluck()
      .all();
  }

  /** Whether rows set aside by a flush, or taken away by a DEL of a namespace, wait for purgeStep. */
  hasPurgeWork(): boolean {
    return this.guard(() => {
      this.shareReadTxn();
      if (this.flushedTables().length > 0) return true;
      if (!this.tombstoned) return false;
      this.tombstoned = this.prep('SELECT 1 FROM ns_tombstones LIMIT 1').get() !== undefined;
      return this.tombstoned;
    });
  }

  /**
   * Deletes up to `limit` rows, and at most about PURGE_STEP_BYTES of values, from the oldest
   * table a flush set aside (no triggers, no secondary indexes left on it: the cost is the pages
   * freed); drops the table once it is empty. Inside a write transaction (queued as 'purge').
   */
  private purgeStep(limit: number): void {
    const table = this.flushedTables()[0];
    if (table === undefined) {
      if (this.tombstoned) this.purgeTombstoned(limit);
      return;
    }
    const t = quoteName(table);
    if (table.startsWith('ns_counts')) {
      // WITHOUT ROWID, small rows.
      const deleted = this.db.prepare(`DELETE FROM ${t} WHERE namespace IN (SELECT namespace FROM ${t} LIMIT ?)`).run(limit).changes;
      if (deleted < limit) this.db.exec(`DROP TABLE ${t}`);
      return;
    }
    // length(data) is read from the record header, not the value.
    const rows = this.db.prepare<[number], { id: number; n: number }>(`SELECT rowid AS id, length(data) AS n FROM ${t} ORDER BY rowid LIMIT ?`).all(limit);
    if (rows.length === 0) {
      this.db.exec(`DROP TABLE ${t}`);
      return;
    }
    let bytes = 0;
    let last = rows[0].id;
    for (const r of rows) {
      if (bytes > 0 && bytes + r.n > PURGE_STEP_BYTES) break;
      bytes += r.n;
      last = r.id;
    }
    this.db.prepare(`DELETE FROM ${t} WHERE rowid <= ?`).run(last);
  }

  /** Moves the WAL into the main file; called at shutdown so the next start reads one file. */
  checkpoint(): boolean {
    this.endReadTxn();
    const [row] = this.guard(() => this.db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[]);
    // busy: another connection (the maintenance thread, a backup) held it back; try again later.
    return row.busy === 0;
  }

  integrityCheck(): string {
    return this.guard(() => String(this.db.pragma('integrity_check', { simple: true })));
  }

  close(): void {
    this.endReadTxn();
    this.guard(() => this.db.close());
  }

  get isOpen(): boolean {
    return this.db.open;
  }

  /**
   * Pages in the WAL after which a commit runs a checkpoint itself, on the event loop. SQLite's
   * default is 1000; with a background checkpointer this is only the safety net.
   */
  setAutoCheckpoint(pages: number): void {
    this.db.pragma(`wal_autocheckpoint = ${Math.floor(pages)}`);
  }

  // ---- operations (observability/, tools/) ------------------------------------------------------

  /** Page size, pages in the file and free pages among them. */
  pageStats(): PageStats {
    return this.guard(() => ({
      pageSize: Number(this.db.pragma('page_size', { simple: true })),
      pageCount: Number(this.db.pragma('page_count', { simple: true })),
      freelistCount: Number(this.db.pragma('freelist_count', { simple: true })),
      autoVacuum: Number(this.db.pragma('auto_vacuum', { simple: true })),
    }));
  }

  /** Health: a read of each table, and taking (then releasing) the write lock. */
  probe(): { readable: boolean; writable: boolean; error: string | null } {
    const probed = this.probeFile();
    // A shard that returned SQLITE_CORRUPT once stays unhealthy: the page may not be the one probed.
    if (this.damage !== null) return { ...probed, readable: false, error: `damaged: ${this.damage.message} (${this.damage.code})` };
    return probed;
  }

  private probeFile(): { readable: boolean; writable: boolean; error: string | null } {
    let readable = false;
    let writable = false;
    try {
      this.db.prepare('SELECT count(*) FROM (SELECT 1 FROM blobs LIMIT 1)').get();
      this.db.prepare('SELECT count(*) FROM (SELECT 1 FROM ns_blobs LIMIT 1)').get();
      readable = true;
      this.endReadTxn();
      if (this.db.inTransaction) return { readable, writable: true, error: null };
      // Without waiting: a probe must not stall the event loop for busy_timeout when another
      // process holds the write lock (that shard is then reported as not writable).
      const busy = Number(this.db.pragma('busy_timeout', { simple: true }));
      this.db.pragma('busy_timeout = 0');
      try {
        this.tx.begin.run();
        this.tx.rollback.run();
      } finally {
        this.db.pragma(`busy_timeout = ${busy}`);
      }
      writable = !this.db.readonly;
      return { readable, writable, error: writable ? null : 'opened read-only' };
    } catch (err) {
      // Busy (another connection holds the write lock) is not a fault of the file.
      const e = isDamageCode(sqliteCode(err)) ? this.fault(err) : err;
      return { readable, writable, error: e instanceof Error ? e.message : String(e) };
    }
  }

  /**
   * Online backup into `file` (SQLite's backup API). Copies in steps between event-loop turns;
   * writes through this connection meanwhile are applied to the copy too, so it is a consistent
   * snapshot of the shard as of the last step.
   */
  async backup(file: string): Promise<void> {
    this.endReadTxn();
    // better-sqlite3 reports a source it could not lock as a finished backup of 0 pages.
    const done = await this.db.backup(file).catch((err: unknown) => {
      throw this.fault(err);
    });
    if (done.totalPages === 0) throw new Error(`backup of ${this.path} copied no pages (source locked?)`);
  }

  /** PRAGMA incremental_vacuum(pages): returns the pages freed (0 unless auto_vacuum is INCREMENTAL). */
  incrementalVacuum(pages: number): number {
    this.endReadTxn();
    if (pages <= 0 || this.db.inTransaction) return 0;
    return this.guard(() => {
      const before = Number(this.db.pragma('freelist_count', { simple: true }));
      if (before === 0) return 0;
      this.db.pragma(`incremental_vacuum(${Math.floor(pages)})`);
      return before - Number(this.db.pragma('freelist_count', { simple: true }));
    });
  }
}

export interface PageStats {
  pageSize: number;
  pageCount: number;
  freelistCount: number;
  /** 0 none, 1 full, 2 incremental. */
  autoVacuum: number;
}

export interface FieldRow extends StoredValue {
  key: Buffer;
}

/** What the stats table holds for one shard. */
export interface ShardCounts {
  /** Plain keys (rows of blobs), expired-but-unswept ones included. */
  keys: number;
  /** Plain keys with an expiry. */
  expires: number;
  /** Namespace fields (rows of ns_blobs). */
  fields: number;
  logical: number;
  stored: number;
}

export interface ByteTotals {
  rows: number;
  logical: number;
  stored: number;
}

export interface RowInfo extends RowMeta {
  /** Logical size: the bytes the client wrote. */
  size: number;
  /** Bytes stored (after compression). */
  stored: number;
  codec: number;
}

export interface RowMeta {
  created_at: number;
  updated_at: number;
  expires_at: number | null;
  version: number;
}

/** A shard file that cannot be opened: the message names the file and SQLite's (or the OS') reason. */
function openError(path: string, err: unknown): StorageError {
  const code = sqliteCode(err);
  const message = err instanceof Error ? err.message : String(err);
  return new StorageError(path, code, isDamageCode(code), `cannot open shard file ${path}: ${message}${code === undefined ? '' : ` (${code})`}`);
}
