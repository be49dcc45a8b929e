/**
 * `blobasaur migrate --data-dir D --to-shards M` (server stopped): changes the shard count of a
 * data directory by moving only the rows whose shard changes.
 *
 * Resumable by construction. A row moves in two commits: first it is written (INSERT OR REPLACE,
 * the same bytes and metadata) into its new shard, then deleted from the old one. A kill between
 * the two leaves the row in both files with identical contents; the next run copies it again
 * (a no-op) and deletes it. A value stored in chunks (over 1 MiB) stays chunked: its stored chunks
 * are copied as they are into the target's chunk file under a new blob id first, and the row
 * written there refers to that id; the source row's delete leaves its blob dead (the server
 * reclaims it), and a kill before the row is written leaves an orphan blob (reclaimed at start). Nothing else writes while the server is stopped, so a row present
 * twice can only be such a copy. `migrate.json` records the source and target counts and the row
 * count before the first move; while it exists the server refuses to start on the directory. The
 * end: every row is checked to sit in its home shard (so none is duplicated), the total must equal
 * the count before, and only then is the new count written to blobasaur.json.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { LAYOUT_FILE, writeLayout } from '../storage/layout.js';
import { ShardRing } from '../storage/mpchash.js';
import { ChunkFile, chunkCount } from '../storage/chunks.js';
import type { Encoded } from '../storage/codecs.js';
import { applyMigrations, chunkPath, KEYED_TABLES, purgeTombstonedRows, registerSlotFunction, schemaTables, shardFiles, shardPath } from '../storage/schema.js';
import { blobProblem, chunkedRows } from './chunk-check.js';
import { Shard } from '../storage/shard.js';
import { readShardCount } from './vacuum.js';

export const MIGRATE_STATE_FILE = 'migrate.json';

export interface MigrateState {
  format: 1;
  from: number;
  to: number;
  rows_before: number;
  started_at: string;
  /** Source shards fully scanned (an optimisation: a resumed run skips them). */
  done_sources: number[];
}

export interface MigrateProgress {
  phase: 'move' | 'verify' | 'done';
  source: number;
  sources: number;
  scanned: number;
  moved: number;
  total: number;
}

export interface MigrateResult {
  from: number;
  to: number;
  rows: number;
  moved: number;
  resumed: boolean;
  nothingToDo: boolean;
}

export class MigrateError extends Error {}

/** Every table of the current schema and its columns, read from the schema itself, not restated here. */
let tableList: ReadonlyMap<string, { columns: string; params: string }> | undefined;
function tables(): ReadonlyMap<string, { columns: string; params: string }> {
  tableList ??= new Map(schemaTables().map((t) => [t.name, { columns: t.columns.join(', '), params: t.columns.map(() => '?').join(', ') }]));
  return tableList;
}

const MAX_CHUNK_BYTES = 64 * 1024 * 1024;

function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, path);
}

export function readMigrateState(dataDir: string): MigrateState | null {
  const path = join(dataDir, MIGRATE_STATE_FILE);
  if (!existsSync(path)) return null;
  return JSON.parse(readFileSync(path, 'utf8')) as MigrateState;
}

/**
 * Opens a shard file for the migration and holds its lock until closed (locking_mode EXCLUSIVE):
 * a running server has the file open and makes this fail, and no server can open it meanwhile.
 */
function openRaw(path: string, migrate = true): Database.Database {
  const db = new Database(path, { fileMustExist: true });
  registerSlotFunction(db);
  try {
    db.pragma('busy_timeout = 500');
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    // INSERT OR REPLACE of a row moved twice (a resumed run) must fire the delete trigger of the
    // row it replaces, or the counts kept by triggers would drift.
    db.pragma('recursive_triggers = ON');
    db.exec('BEGIN EXCLUSIVE; COMMIT');
  } catch (err) {
    db.close();
    if (String((err as { code?: unknown }).code).startsWith('SQLITE_BUSY')) {
      throw new MigrateError(`${path} is in use by another process (is the server running?); stop the server before migrating`);
    }
    throw err;
  }
  if (!migrate) return db;
  try {
    // Rows are copied column for column, so source and target must have the same schema: this
    // one's. An older file is upgraded in place as the server would; a newer one is refused.
    applyMigrations(db, path);
    // Rows of a DEL the server had not purged yet would be moved as live fields.
    purgeTombstonedRows(db);
  } catch (err) {
    db.close();
    throw new MigrateError((err as Error).message);
  }
  return db;
}

/** Refuses a shard with tables this version does not know how to move (added by hand). */
function checkTables(db: Database.Database, path: string): void {
  const found = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[];
  const unknown = found.filter((t) => !tables().has(t));
  if (unknown.length > 0) throw new MigrateError(`${path} has tables this version cannot migrate: ${unknown.join(', ')}`);
}

function countRows(db: Database.Database): number {
  return Number(db.prepare('SELECT count(*) FROM blobs').pluck().get()) + Number(db.prepare('SELECT count(*) FROM ns_blobs').pluck().get());
}

/** Creates a shard file as the server does (its pragmas, auto_vacuum first, and schema.ts's migrations), then closes it. */
function createShardFile(path: string, id: number): void {
  new Shard(id, path, { synchronous: 'NORMAL', cache_size_mb: 16, busy_timeout_ms: 5000, mmap_size_mb: 0 }).close();
}

function removeShardFiles(dataDir: string, id: number): void {
  for (const f of shardFiles(shardPath(dataDir, id))) rmSync(f, { force: true });
}

export function migrateDataDir(
  dataDir: string,
  toShards: number,
  opts: { batch?: number; progress?: (p: MigrateProgress) => void } = {},
): MigrateResult {
  const batch = Math.max(1, opts.batch ?? 1000);
  const progress = opts.progress ?? (() => {});
  if (!Number.isInteger(toShards) || toShards < 1 || toShards > 1024) throw new MigrateError('--to-shards must be an integer 1..1024');
  const recorded = readShardCount(dataDir);
  let state = readMigrateState(dataDir);
  const resumed = state !== null;
  const statePath = join(dataDir, MIGRATE_STATE_FILE);

  if (state !== null) {
    if (state.to !== toShards) {
      throw new MigrateError(
        `a migration from ${state.from} to ${state.to} shards is in progress in ${dataDir}; run it again with --to-shards ${state.to} to finish it`,
      );
    }
    if (recorded === state.to) {
      // Killed after the new count was recorded: only the clean-up is left.
      for (let id = state.to; id < state.from; id++) removeShardFiles(dataDir, id);
      rmSync(statePath, { force: true });
      return { from: state.from, to: state.to, rows: state.rows_before, moved: 0, resumed, nothingToDo: false };
    }
    if (recorded !== state.from) throw new MigrateError(`${MIGRATE_STATE_FILE} says ${state.from} shards but ${LAYOUT_FILE} says ${recorded}`);
  } else {
    if (recorded === toShards) return { from: recorded, to: toShards, rows: 0, moved: 0, resumed, nothingToDo: true };
    for (let id = 0; id < recorded; id++) {
      if (!existsSync(shardPath(dataDir, id))) throw new MigrateError(`${shardPath(dataDir, id)} is missing`);
    }
    let rowsBefore = 0;
    for (let id = 0; id < recorded; id++) {
      const db = openRaw(shardPath(dataDir, id));
      try {
        checkTables(db, shardPath(dataDir, id));
        rowsBefore += countRows(db);
      } finally {
        db.close();
      }
    }
    // A leftover file beyond the recorded count would be mistaken for migrated data.
    for (let id = recorded; id < toShards; id++) {
      const p = shardPath(dataDir, id);
      if (!existsSync(p)) continue;
      // Only looked at: a file given tables here would miss the server's auto_vacuum setting.
      const db = openRaw(p, false);
      let rows = 0;
      try {
        const hasTable = db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'blobs'").pluck().get() !== 0;
        rows = hasTable ? countRows(db) : 0;
      } finally {
        db.close();
      }
      if (rows > 0) throw new MigrateError(`${p} already holds ${rows} rows but is not one of the ${recorded} shards; move it away first`);
    }
    state = { format: 1, from: recorded, to: toShards, rows_before: rowsBefore, started_at: new Date().toISOString(), done_sources: [] };
    writeJsonAtomic(statePath, state);
  }

  const st: MigrateState = state;
  const total = Math.max(st.from, st.to);
  // New shards get the server's schema; idempotent, so a kill while creating one is harmless.
  for (let id = st.from; id < st.to; id++) createShardFile(shardPath(dataDir, id), id);
  const dbs: (Database.Database | null)[] = [];
  for (let id = 0; id < total; id++) dbs.push(existsSync(shardPath(dataDir, id)) ? openRaw(shardPath(dataDir, id)) : null);
  const ring = new ShardRing(st.to);
  const chunks = new ChunkFiles(dataDir);
  let moved = 0;
  let scanned = 0;
  try {
    for (let source = 0; source < st.from; source++) {
      const src = dbs[source];
      if (src === null || st.done_sources.includes(source)) continue;
      for (const table of KEYED_TABLES) {
        moveTable(src, source, table, dbs, ring, batch, chunks, (n, m) => {
          scanned += n;
          moved += m;
          progress({ phase: 'move', source, sources: st.from, scanned, moved, total: st.rows_before });
        });
      }
      st.done_sources.push(source);
      writeJsonAtomic(statePath, st);
    }

    progress({ phase: 'verify', source: st.from, sources: st.from, scanned, moved, total: st.rows_before });
    let rows = 0;
    for (let id = 0; id < total; id++) {
      const db = dbs[id];
      if (db === null) continue;
      const n = countRows(db);
      if (id >= st.to) {
        if (n !== 0) throw new MigrateError(`shard ${id} still holds ${n} rows after the move`);
        continue;
      }
      rows += n;
      for (const table of KEYED_TABLES) {
        const keys = db.prepare<[], Buffer>(`SELECT key FROM ${table}`).pluck().iterate();
        for (const key of keys) {
          const home = ring.shardOf(key);
          if (home !== id) throw new MigrateError(`a row of ${table} in shard ${id} belongs to shard ${home}`);
        }
      }
    }
    if (rows !== st.rows_before) throw new MigrateError(`row count check failed: ${rows} rows after, ${st.rows_before} before`);
    chunks.close();
    // Every chunked value in its home shard finds its blob whole in that shard's chunk file.
    for (let id = 0; id < st.to; id++) {
      const db = dbs[id];
      const file = chunkPath(dataDir, id);
      if (db === null || !existsSync(file)) continue;
      const cdb = new Database(file, { fileMustExist: true });
      try {
        for (const row of chunkedRows(db)) {
          const why = blobProblem(cdb, row.blob_id, row.size, new Set());
          if (why !== null) throw new MigrateError(`after the move, shard ${id}: ${why}`);
        }
      } finally {
        cdb.close();
      }
    }
    for (const db of dbs) db?.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    chunks.close();
    for (const db of dbs) db?.close();
  }
  // The point of no return: the directory now has the new count.
  writeLayout(dataDir, st.to);
  for (let id = st.to; id < st.from; id++) removeShardFiles(dataDir, id);
  rmSync(statePath, { force: true });
  progress({ phase: 'done', source: st.from, sources: st.from, scanned, moved, total: st.rows_before });
  return { from: st.from, to: st.to, rows: st.rows_before, moved, resumed, nothingToDo: false };
}

/**
 * The chunk files of the shards, opened when a chunked value is first moved from or to them (with
 * the server's own code and pragmas: 64 KiB pages, set before a new file's first table), and the
 * blobs copied in this run (a blob several rows share is copied once per target).
 */
class ChunkFiles {
  private readonly open = new Map<number, ChunkFile>();
  private readonly copied = new Map<string, { id: number; stored: number }>();

  constructor(private readonly dataDir: string) {}

  private file(shard: number, db: Database.Database): ChunkFile {
    let f = this.open.get(shard);
    if (f === undefined) {
      f = new ChunkFile(chunkPath(this.dataDir, shard), { synchronous: 'NORMAL', cache_size_mb: 16, busy_timeout_ms: 500, mmap_size_mb: 0, locking_mode: 'EXCLUSIVE' });
      // New ids start above every id the shard file mentions (rows and dead blobs), as the server's.
      f.allocate(Number(db.prepare('SELECT max(coalesce((SELECT max(blob_id) FROM blobs), 0), coalesce((SELECT max(blob_id) FROM ns_blobs), 0), coalesce((SELECT max(blob_id) FROM dead_blobs), 0))').pluck().get()));
      this.open.set(shard, f);
    }
    return f;
  }

  /** Copies blob `id` (`size` bytes) of shard `from` into shard `to`'s chunk file; its id there and stored bytes. */
  copy(from: number, fromDb: Database.Database, to: number, toDb: Database.Database, id: number, size: number): { id: number; stored: number } {
    const memo = `${from}:${id}:${to}`;
    const done = this.copied.get(memo);
    if (done !== undefined) return done;
    const src = this.file(from, fromDb);
    const dst = this.file(to, toDb);
    const copy = dst.allocate();
    dst.open(copy, size);
    let stored = 0;
    const n = chunkCount(size);
    for (let seq = 0; seq < n; seq += CHUNKS_PER_COPY) {
      const part: { encoded: Encoded; size: number }[] = [];
      for (let s = seq; s < Math.min(n, seq + CHUNKS_PER_COPY); s++) {
        let c;
        try {
          c = src.readStored(id, s);
        } catch (err) {
          throw new MigrateError(`${(err as Error).message}: run blobasaur check and repair before migrating`);
        }
        part.push({ encoded: { codec: c.codec, payload: c.data }, size: c.size });
      }
      stored += dst.putChunks(copy, seq, part);
    }
    const out = { id: copy, stored };
    this.copied.set(memo, out);
    return out;
  }

  close(): void {
    for (const f of this.open.values()) {
      f.checkpoint();
      f.close();
    }
    this.open.clear();
  }
}

/** Chunks copied per transaction of the target chunk file (16 × 256 KiB). */
const CHUNKS_PER_COPY = 16;

/** Moves the rows of one table of one source shard whose home is elsewhere, `batch` rows per step. */
function moveTable(
  src: Database.Database,
  source: number,
  table: string,
  dbs: (Database.Database | null)[],
  ring: ShardRing,
  batch: number,
  chunks: ChunkFiles,
  step: (scanned: number, moved: number) => void,
): void {
  const { columns, params } = tables().get(table)!;
  const names = columns.split(', ');
  const blobAt = names.indexOf('blob_id');
  const storedAt = names.indexOf('blob_stored');
  const sizeAt = names.indexOf('size');
  const scan = src.prepare<[number, number], { rowid: number; key: Buffer; size: number; chunked: number }>(
    `SELECT rowid, key, ${blobAt < 0 ? '0' : 'blob_id IS NOT NULL'} AS chunked, size FROM ${table} WHERE rowid > ? ORDER BY rowid LIMIT ?`,
  );
  const read = src.prepare(`SELECT ${columns} FROM ${table} WHERE rowid = ?`).raw();
  const del = src.prepare(`DELETE FROM ${table} WHERE rowid = ?`);
  const inserts = new Map<number, Database.Statement>();
  const insertInto = (t: number): Database.Statement => {
    let s = inserts.get(t);
    if (s === undefined) {
      s = dbs[t]!.prepare(`INSERT OR REPLACE INTO ${table} (${columns}) VALUES (${params})`);
      inserts.set(t, s);
    }
    return s;
  };
  let after = 0;
  for (;;) {
    const rows = scan.all(after, batch);
    if (rows.length === 0) return;
    // Cut the chunk where its values pass MAX_CHUNK_BYTES (one row always fits); a chunked
    // value's bytes are not in the row, and are copied chunk by chunk.
    let bytes = 0;
    let n = 0;
    const inRow = (r: { size: number; chunked: number }): number => (r.chunked ? 0 : r.size);
    while (n < rows.length && (n === 0 || bytes + inRow(rows[n]) <= MAX_CHUNK_BYTES)) bytes += inRow(rows[n++]);
    const chunk = rows.slice(0, n);
    const byTarget = new Map<number, number[]>();
    for (const row of chunk) {
      const home = ring.shardOf(row.key);
      if (home === source) continue;
      let list = byTarget.get(home);
      if (list === undefined) byTarget.set(home, (list = []));
      list.push(row.rowid);
    }
    // 1. Copy into each new home and commit there (a chunked value's blob first, in its own commits).
    for (const [target, rowids] of byTarget) {
      const db = dbs[target]!;
      const ins = insertInto(target);
      const values = rowids.map((rowid) => {
        const v = read.get(rowid) as unknown[];
        if (blobAt >= 0 && v[blobAt] !== null) {
          const copy = chunks.copy(source, src, target, db, Number(v[blobAt]), Number(v[sizeAt]));
          v[blobAt] = copy.id;
          v[storedAt] = copy.stored;
        }
        return v;
      });
      db.transaction(() => {
        for (const v of values) ins.run(...v);
      })();
    }
    // 2. Only then delete from the source: a kill between 1 and 2 leaves identical copies.
    let movedHere = 0;
    src.transaction(() => {
      for (const rowids of byTarget.values()) for (const rowid of rowids) movedHere += del.run(rowid).changes;
    })();
    after = chunk[chunk.length - 1].rowid;
    step(chunk.length, movedHere);
  }
}
