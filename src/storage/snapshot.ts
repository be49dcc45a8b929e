/**
 * A read snapshot of one shard on a connection of its own: the rows as they were committed when
 * it began, whatever commits meanwhile (WAL keeps the pages a reader's snapshot needs). For reads
 * too large for one turn of the event loop (HGETALL of a huge namespace), which read it in steps.
 *
 * The connection is read-only and pooled by the store (Store.openSnapshot). It holds the WAL back
 * from being checkpointed past its snapshot while it lives: whoever takes one ends it promptly.
 */
import Database from 'better-sqlite3';
import type { Statement } from 'better-sqlite3';
import { NOT_TOMBSTONED, type SqliteSettings } from './shard.js';

/** Live, and not taken away by a DEL of the namespace that waits for its purge. */
const LIVE = `(expires_at IS NULL OR expires_at > ?) AND ${NOT_TOMBSTONED}`;

/** A field row as a snapshot reads it: the payload, or the blob that holds it in the chunk file. */
export interface SnapshotRow {
  key: Buffer;
  data: Buffer;
  codec: number;
  checksum: number | null;
  size: number;
  blob_id: number | null;
  blob_stored: number | null;
}

const COLUMNS = 'key, data, codec, checksum, size, blob_id, blob_stored';

/**
 * The snapshot's reads. Each one a few index seeks, whatever the table holds: they run on the
 * event loop (test/unit/storage-snapshot.test.ts checks their plans for scans).
 */
export const SNAPSHOT_SQL = {
  fields: 'SELECT fields FROM ns_counts WHERE namespace = ?',
  // Rows that have expired and wait for the sweeper: few, found by the expiry index.
  expired: `SELECT count(*) FROM ns_blobs INDEXED BY ns_blobs_expires_at WHERE expires_at IS NOT NULL AND expires_at <= ? AND namespace = ? AND ${NOT_TOMBSTONED}`,
  live: `SELECT ${COLUMNS} FROM ns_blobs WHERE namespace = ? AND key = ? AND ${LIVE}`,
  any: `SELECT ${COLUMNS} FROM ns_blobs WHERE namespace = ? AND key = ? AND ${NOT_TOMBSTONED}`,
  // first/after are iterated a page at a time (page()): a range of the primary key.
  first: `SELECT ${COLUMNS} FROM ns_blobs WHERE namespace = ? AND ${LIVE} ORDER BY key`,
  after: `SELECT ${COLUMNS} FROM ns_blobs WHERE namespace = ? AND key > ? AND ${LIVE} ORDER BY key`,
  atOrAfter: `SELECT ${COLUMNS} FROM ns_blobs WHERE namespace = ? AND key >= ? AND ${LIVE} ORDER BY key LIMIT 1`,
  // Any row, live or not: only the key range matters (a bound for random keys).
  lastKey: 'SELECT key FROM ns_blobs WHERE namespace = ? ORDER BY key DESC LIMIT 1',
  // Two subqueries: SQLite reads a lone min() or max() off the b-tree's edge, but both in one
  // SELECT scan the whole table (an index of it: ~2 ms per 50,000 rows).
  rowids: 'SELECT (SELECT min(rowid) FROM ns_blobs) AS low, (SELECT max(rowid) FROM ns_blobs) AS high',
  atRowid: `SELECT ${COLUMNS}, (namespace = ? AND ${LIVE}) AS ok FROM ns_blobs WHERE rowid >= ? ORDER BY rowid LIMIT 1`,
} as const;

/** One pooled read-only connection; begin() starts a snapshot, end() lets it go. */
export class SnapshotConnection {
  private readonly db: Database.Database;
  private readonly stmt: {
    begin: Statement;
    commit: Statement;
    fields: Statement<[Buffer], number>;
    expired: Statement<[number, Buffer], number>;
    live: Statement<[Buffer, Buffer, number], SnapshotRow>;
    any: Statement<[Buffer, Buffer], SnapshotRow>;
    first: Statement<[Buffer, number], SnapshotRow>;
    after: Statement<[Buffer, Buffer, number], SnapshotRow>;
    atOrAfter: Statement<[Buffer, Buffer, number], SnapshotRow>;
    lastKey: Statement<[Buffer], Buffer>;
    rowids: Statement<[], { low: number | null; high: number | null }>;
    atRowid: Statement<[Buffer, number, number], SnapshotRow & { ok: number }>;
  };

  constructor(path: string, sqlite: SqliteSettings) {
    this.db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      this.db.pragma(`busy_timeout = ${sqlite.busy_timeout_ms}`);
      this.db.pragma(`cache_size = ${-Math.max(1, sqlite.cache_size_mb) * 1024}`);
      this.db.pragma(`mmap_size = ${sqlite.mmap_size_mb * 1024 * 1024}`);
      const db = this.db;
      const q = SNAPSHOT_SQL;
      this.stmt = {
        begin: db.prepare('BEGIN'),
        commit: db.prepare('COMMIT'),
        fields: db.prepare<[Buffer], number>(q.fields).pluck(),
        expired: db.prepare<[number, Buffer], number>(q.expired).pluck(),
        live: db.prepare(q.live),
        any: db.prepare(q.any),
        first: db.prepare(q.first),
        after: db.prepare(q.after),
        atOrAfter: db.prepare(q.atOrAfter),
        lastKey: db.prepare<[Buffer], Buffer>(q.lastKey).pluck(),
        rowids: db.prepare(q.rowids),
        atRowid: db.prepare(q.atRowid),
      };
    } catch (err) {
      this.db.close();
      throw err;
    }
  }

  /** Starts the snapshot now: the first read of a transaction fixes what it sees. */
  begin(): void {
    this.stmt.begin.run();
    this.stmt.fields.get(Buffer.alloc(0));
  }

  end(): void {
    if (this.db.inTransaction) this.stmt.commit.run();
  }

  close(): void {
    this.end();
    this.db.close();
  }

  /** Live fields of `ns` in this shard: the maintained count less the expired rows not yet swept. */
  liveCount(ns: Buffer, now: number): number {
    const all = this.stmt.fields.get(ns) ?? 0;
    return all === 0 ? 0 : all - (this.stmt.expired.get(now, ns) ?? 0);
  }

  liveRow(ns: Buffer, key: Buffer, now: number): SnapshotRow | undefined {
    return this.stmt.live.get(ns, key, now);
  }

  /** A row whatever its expiry (a pending expiry change has decided the field is live). */
  anyRow(ns: Buffer, key: Buffer): SnapshotRow | undefined {
    return this.stmt.any.get(ns, key);
  }

  /**
   * The live row of `ns` at or after `pivot` in key order, wrapping round to the first: one index
   * seek (random sampling by key, HRANDFIELD), or undefined when the shard has none.
   */
  rowAtOrAfter(ns: Buffer, pivot: Buffer, now: number): SnapshotRow | undefined {
    return this.stmt.atOrAfter.get(ns, pivot, now) ?? this.stmt.first.get(ns, now);
  }

  /** The smallest and largest rowid of ns_blobs (two index edges), or null when it is empty. */
  rowidRange(): { low: number; high: number } | null {
    const r = this.stmt.rowids.get();
    return r === undefined || r.low === null || r.high === null ? null : { low: r.low, high: r.high };
  }

  /** The row at or after rowid `rowid` if it is a live field of `ns`, else undefined (a random pick missed). */
  rowAtRowid(ns: Buffer, rowid: number, now: number): SnapshotRow | undefined {
    const row = this.stmt.atRowid.get(ns, now, rowid);
    return row !== undefined && row.ok === 1 ? row : undefined;
  }

  /** The largest key `ns` has in this shard (live or not), or undefined. */
  lastKey(ns: Buffer): Buffer | undefined {
    return this.stmt.lastKey.get(ns);
  }

  /**
   * Live rows of `ns` after `after` in key order, stopping at `maxRows` rows, `maxBytes` of
   * values, or `deadline` (performance.now()), whichever comes first; at least one row if any.
   */
  page(ns: Buffer, after: Buffer | null, now: number, maxRows: number, maxBytes: number, deadline: number): SnapshotRow[] {
    const it = after === null ? this.stmt.first.iterate(ns, now) : this.stmt.after.iterate(ns, after, now);
    const out: SnapshotRow[] = [];
    let bytes = 0;
    try {
      for (const row of it) {
        out.push(row);
        bytes += row.data.length;
        if (out.length >= maxRows || bytes >= maxBytes || performance.now() >= deadline) break;
      }
    } finally {
      it.return?.();
    }
    return out;
  }
}
