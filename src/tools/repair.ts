/**
 * `blobasaur repair`: salvages every readable row of a damaged shard into a new file, with the
 * server stopped. The new file is made by the server's own code (Shard: its pragmas and every
 * migration of schema.ts); the damaged file is kept beside it as shard-N.db.corrupt.
 *
 * Rows are read one at a time in rowid order, each by a seek (`rowid > last`), so one broken
 * b-tree page costs only the rows on it: a seek that fails is retried further on (doubling the
 * jump, then narrowing back by bisection to the first rowid that reads again). Values whose
 * checksum does not match are not copied: a wrong value is lost, not served. The key index, read
 * on its own, names the rows that could not be saved.
 *
 * A value stored in chunks is saved with its blob: the blob's chunks are read from the old chunk
 * file one at a time, and copied (same blob id, shared chunks once) into a new chunk file only if
 * every chunk is there, reads, passes its CRC-32 and has the size the value needs; otherwise the
 * row is lost and named. Blobs no saved row references are left behind; the damaged chunk file is
 * kept beside the new one as shard-N.chunks.db.corrupt.
 */
import { existsSync, renameSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { checksum } from '../storage/checksum.js';
import { describeKey } from '../storage/key-names.js';
import { crc32 } from 'node:zlib';
import { CHUNK_BYTES, ChunkFile, chunkCount } from '../storage/chunks.js';
import { chunkPathOf, registerSlotFunction, schemaTables, shardFiles, shardPath } from '../storage/schema.js';
import { Shard } from '../storage/shard.js';
import { checkShardFile, message } from './check.js';
import { readShardCount } from './vacuum.js';

export interface ShardRepair {
  shard: number;
  file: string;
  /** False when the shard passed the check and was left alone. */
  repaired: boolean;
  saved: number;
  /** Rows known to be lost: unreadable (named by the key index) or failing their checksum. */
  lost: number;
  /** Names of lost keys (at most MAX_NAMED). */
  lostKeys: string[];
  /** Whether the key index could be read whole: if not, rows may be lost that `lost` does not count. */
  lostComplete: boolean;
  /** Where the damaged file was moved. */
  keptAs: string | null;
}

const MAX_NAMED = 20;
const DATA_TABLES = ['blobs', 'ns_blobs'];
const BATCH = 1000;

export class RepairError extends Error {}

export function repairDataDir(dataDir: string, opts: { shard?: number; progress?: (r: ShardRepair) => void } = {}): ShardRepair[] {
  const shards = readShardCount(dataDir);
  if (opts.shard !== undefined && (opts.shard < 0 || opts.shard >= shards)) throw new RepairError(`--shard ${opts.shard}: ${dataDir} has shards 0..${shards - 1}`);
  const out: ShardRepair[] = [];
  for (let id = 0; id < shards; id++) {
    if (opts.shard !== undefined && id !== opts.shard) continue;
    const file = shardPath(dataDir, id);
    if (!existsSync(file)) throw new RepairError(`${file} is missing`);
    const forced = opts.shard !== undefined;
    const r = forced || !checkShardFile(id, file).ok ? repairShardFile(id, file) : untouched(id, file);
    out.push(r);
    opts.progress?.(r);
  }
  return out;
}

function untouched(shard: number, file: string): ShardRepair {
  return { shard, file, repaired: false, saved: 0, lost: 0, lostKeys: [], lostComplete: true, keptAs: null };
}

/** Salvages one shard file into a new one and swaps them; the damaged file is kept as *.corrupt. */
export function repairShardFile(shard: number, file: string): ShardRepair {
  const src = openExclusive(file);
  const fresh = `${file}.repair`;
  for (const f of shardFiles(fresh)) rmSync(f, { force: true });
  let saved = 0;
  const lostNames = new Set<string>();
  let lostComplete = true;
  const chunkFile = chunkPathOf(file);
  const freshChunks = `${chunkFile}.repair`;
  let blobs: BlobSalvage | null = null;
  try {
    // The new file as the server makes it: pragmas, auto_vacuum and every migration.
    new Shard(shard, fresh, { synchronous: 'NORMAL', cache_size_mb: 16, busy_timeout_ms: 5000, mmap_size_mb: 0 }).close();
    blobs = new BlobSalvage(chunkFile, freshChunks);
    const dst = new Database(fresh);
    registerSlotFunction(dst); // the rows copied in compute their indexed slot
    try {
      dst.pragma('journal_mode = WAL');
      // The data tables only: anything else a migration adds (counts, indexes of the data) is
      // derived, and the new file's own schema builds it from the rows copied in.
      for (const t of schemaTables().filter((s) => DATA_TABLES.includes(s.name))) {
        const have = new Set((src.pragma(`table_info(${t.name})`) as { name: string }[]).map((c) => c.name));
        const cols = t.columns.filter((c) => have.has(c));
        const insert = dst.prepare(`INSERT OR REPLACE INTO ${t.name} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`);
        const savedKeys = new Set<string>();
        const add = dst.transaction((rows: Record<string, unknown>[]) => {
          for (const row of rows) insert.run(cols.map((c) => row[c]));
        });
        let batch: Record<string, unknown>[] = [];
        const deleted = t.name === 'ns_blobs' ? tombstonedBelow(src, file) : noneDeleted;
        for (const row of readableRows(src, t.name, cols, deleted)) {
          const ns = (row.namespace as Buffer | undefined) ?? null;
          const key = row.key as Buffer;
          const sum = row.checksum as number | null | undefined;
          if (sum !== null && sum !== undefined && checksum(row.data as Buffer) !== sum) {
            lostNames.add(describeKey(ns, key));
            continue;
          }
          if (row.blob_id !== null && row.blob_id !== undefined && !blobs.save(Number(row.blob_id), Number(row.size))) {
            lostNames.add(describeKey(ns, key));
            continue;
          }
          savedKeys.add(rowId(ns, key));
          batch.push(row);
          if (batch.length >= BATCH) {
            add(batch);
            saved += batch.length;
            batch = [];
          }
        }
        add(batch);
        saved += batch.length;
        // The primary-key index is a b-tree of its own: read alone, it names rows the table lost.
        try {
          const keyCols = t.name === 'ns_blobs' ? 'rowid AS rid, namespace, key' : 'rowid AS rid, NULL AS namespace, key';
          const order = t.name === 'ns_blobs' ? 'namespace, key' : 'key';
          const keys = src.prepare(`SELECT ${keyCols} FROM ${t.name} ORDER BY ${order}`).safeIntegers(true);
          for (const k of keys.iterate() as IterableIterator<{ rid: bigint; namespace: Buffer | null; key: Buffer }>) {
            if (deleted(k.rid, k)) continue;
            if (!savedKeys.has(rowId(k.namespace, k.key))) lostNames.add(describeKey(k.namespace, k.key));
          }
        } catch {
          lostComplete = false;
        }
      }
      dst.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      dst.close();
    }
    blobs.finish();
  } catch (err) {
    blobs?.close();
    src.close();
    for (const f of [...shardFiles(fresh), freshChunks, `${freshChunks}-wal`, `${freshChunks}-shm`]) rmSync(f, { force: true });
    throw new RepairError(`repair of ${file} failed: ${message(err)}`);
  }
  src.close();
  // The chunk file goes first: until the shard file is swapped too, the old rows keep their old blobs.
  if (blobs.wrote) {
    let chunksKept = `${chunkFile}.corrupt`;
    if (existsSync(chunksKept)) chunksKept = `${chunkFile}.${Date.now()}.corrupt`;
    for (const suffix of ['', '-wal', '-shm']) if (existsSync(`${chunkFile}${suffix}`)) renameSync(`${chunkFile}${suffix}`, `${chunksKept}${suffix}`);
    renameSync(freshChunks, chunkFile);
  }
  let keptAs = `${file}.corrupt`;
  if (existsSync(keptAs)) keptAs = `${file}.${Date.now()}.corrupt`;
  // The damaged file's WAL belongs to it: it moves along, never to be replayed into the new file.
  for (const [from, suffix] of [[file, ''], [`${file}-wal`, '-wal'], [`${file}-shm`, '-shm']] as const) {
    if (existsSync(from)) renameSync(from, `${keptAs}${suffix}`);
  }
  renameSync(fresh, file);
  const names = [...lostNames];
  return { shard, file, repaired: true, saved, lost: names.length, lostKeys: names.slice(0, MAX_NAMED), lostComplete, keptAs };
}

function rowId(ns: Buffer | null, key: Buffer): string {
  return `${ns === null ? '' : `${ns.toString('hex')}:`}${key.toString('hex')}`;
}

/**
 * Copies whole, sound blobs from a (possibly damaged) chunk file into a new one, keeping their ids;
 * a chunk several blobs share is copied once.
 */
class BlobSalvage {
  private src: Database.Database | null = null;
  private dst: Database.Database | null = null;
  private readonly saved = new Map<number, boolean>();
  private readonly chunkIds = new Map<number, number>();
  /** Whether a new chunk file was made (the old one had blobs to save, or could not be read). */
  wrote = false;

  constructor(
    private readonly from: string,
    private readonly to: string,
  ) {
    if (!existsSync(from)) return;
    try {
      this.src = openExclusive(from);
    } catch (err) {
      if (/in use by another process/.test((err as Error).message)) throw err;
      this.src = null;
    }
  }

  private target(): Database.Database {
    if (this.dst === null) {
      for (const f of [this.to, `${this.to}-wal`, `${this.to}-shm`]) rmSync(f, { force: true });
      // As the server makes it: 64 KiB pages and the schema, before anything is written.
      new ChunkFile(this.to, { synchronous: 'NORMAL', cache_size_mb: 16, busy_timeout_ms: 5000, mmap_size_mb: 0 }).close();
      this.dst = new Database(this.to);
      this.dst.pragma('journal_mode = WAL');
      this.wrote = true;
    }
    return this.dst;
  }

  /** Copies blob `id` if it can serve a value of `size` bytes; false when it cannot (the row is lost). */
  save(id: number, size: number): boolean {
    const known = this.saved.get(id);
    if (known !== undefined) return known;
    const ok = this.copy(id, size);
    this.saved.set(id, ok);
    return ok;
  }

  private copy(id: number, size: number): boolean {
    const src = this.src;
    if (src === null) return false;
    const n = chunkCount(size);
    let map: { seq: number; chunk_id: number }[];
    try {
      const indexed = src.prepare<[number], number>('SELECT size FROM blob_index WHERE blob_id = ?').pluck().get(id);
      if (indexed !== size) return false;
      map = src.prepare<[number], { seq: number; chunk_id: number }>('SELECT seq, chunk_id FROM blob_chunks WHERE blob_id = ? ORDER BY seq').all(id);
    } catch {
      return false;
    }
    if (map.length !== n || map.some((m, i) => m.seq !== i)) return false;
    const read = src.prepare<[number], { codec: number; crc: number; size: number; data: Buffer }>('SELECT codec, crc, size, data FROM chunks WHERE id = ?');
    const chunks: ({ codec: number; crc: number; size: number; data: Buffer } | null)[] = [];
    // Checked first, all of them: a blob is saved whole or not at all. Chunks are 256 KiB, and
    // only the ones not copied before are held.
    for (let i = 0; i < n; i++) {
      const want = i < n - 1 ? CHUNK_BYTES : size - (n - 1) * CHUNK_BYTES;
      if (this.chunkIds.has(map[i].chunk_id)) {
        chunks.push(null);
        continue;
      }
      let c;
      try {
        c = read.get(map[i].chunk_id);
      } catch {
        return false;
      }
      if (c === undefined || c.size !== want || crc32(c.data) !== c.crc) return false;
      chunks.push(c);
    }
    const dst = this.target();
    dst.transaction(() => {
      dst.prepare('INSERT INTO blob_index (blob_id, size) VALUES (?, ?)').run(id, size);
      const put = dst.prepare('INSERT INTO chunks (codec, crc, size, data) VALUES (?, ?, ?, ?)');
      const link = dst.prepare('INSERT INTO blob_chunks (blob_id, seq, chunk_id) VALUES (?, ?, ?)');
      chunks.forEach((c, seq) => {
        const old = map[seq].chunk_id;
        if (c !== null) this.chunkIds.set(old, Number(put.run(c.codec, c.crc, c.size, c.data).lastInsertRowid));
        link.run(id, seq, this.chunkIds.get(old)!);
      });
    })();
    return true;
  }

  finish(): void {
    // Always a new file when there was one: what no saved row references is left behind.
    if (existsSync(this.from)) this.target();
    this.dst?.pragma('wal_checkpoint(TRUNCATE)');
    this.close();
  }

  close(): void {
    this.src?.close();
    this.dst?.close();
    this.src = null;
    this.dst = null;
  }
}

/** The source, locked against a running server (which would write to it meanwhile). */
function openExclusive(file: string): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(file, { fileMustExist: true });
    registerSlotFunction(db);
  } catch (err) {
    throw new RepairError(`cannot open ${file}: ${message(err)}`);
  }
  try {
    db.pragma('busy_timeout = 500');
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE; COMMIT');
  } catch (err) {
    db.close();
    const code = String((err as { code?: unknown }).code);
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
      throw new RepairError(`${file} is in use by another process (is the server running?); stop the server before a repair`);
    }
    // A file too damaged to lock is still read as far as it goes.
    const readOnly = new Database(file, { fileMustExist: true, readonly: true });
    registerSlotFunction(readOnly);
    return readOnly;
  }
  return db;
}

/** Largest rowid SQLite allows. */
const MAX_ROWID = 2n ** 63n - 1n;

/**
 * Every row of `table` that can be read, in rowid order. A seek that fails (a broken page on its
 * path) is retried past it: the jump doubles until a seek succeeds, then bisection finds the first
 * position that reads again, so the rows skipped are those the broken pages held.
 */
const noneDeleted = (): boolean => false;

/**
 * Which ns_blobs rows a DEL of their namespace already removed (a tombstone the purge had not
 * finished, schema migration 6): copying them would bring deleted fields back. A tombstone table
 * that cannot be read stops the repair rather than guess.
 */
function tombstonedBelow(src: Database.Database, file: string): (rid: bigint, row: Record<string, unknown>) => boolean {
  const exists = src.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'ns_tombstones'").pluck().get() !== 0;
  if (!exists) return noneDeleted;
  let upto: Map<string, bigint>;
  try {
    upto = new Map(
      (src.prepare('SELECT namespace, upto FROM ns_tombstones').safeIntegers(true).all() as { namespace: Buffer; upto: bigint }[]).map((t) => [
        t.namespace.toString('hex'),
        t.upto,
      ]),
    );
  } catch (err) {
    throw new RepairError(`${file}: the deleted-namespace table (ns_tombstones) cannot be read (${message(err)}); restore this shard from a backup`);
  }
  if (upto.size === 0) return noneDeleted;
  return (rid, row) => {
    const limit = upto.get((row.namespace as Buffer).toString('hex'));
    return limit !== undefined && rid <= limit;
  };
}

function* readableRows(
  db: Database.Database,
  table: string,
  cols: string[],
  deleted: (rid: bigint, row: Record<string, unknown>) => boolean = noneDeleted,
): Generator<Record<string, unknown>> {
  const next = db.prepare(`SELECT rowid AS _rid, ${cols.join(', ')} FROM ${table} WHERE rowid > ? ORDER BY rowid LIMIT 1`).safeIntegers(true);
  const read = (after: bigint): { row: Record<string, unknown> | undefined } | null => {
    try {
      return { row: next.get(after) as Record<string, unknown> | undefined };
    } catch {
      return null;
    }
  };
  let after = -MAX_ROWID - 1n;
  for (;;) {
    const got = read(after);
    if (got === null) {
      const resume = skipBroken(read, after);
      if (resume === null) return;
      after = resume;
      continue;
    }
    if (got.row === undefined) return;
    const row = got.row;
    after = row._rid as bigint;
    delete row._rid;
    if (deleted(after, row)) continue;
    for (const c of cols) if (typeof row[c] === 'bigint') row[c] = Number(row[c]);
    yield row;
  }
}

/** The smallest position past `failed` from which a seek reads again, or null if none does. */
function skipBroken(read: (after: bigint) => unknown, failed: bigint): bigint | null {
  let bad = failed;
  let step = 1n;
  let good: bigint | null = null;
  while (bad + step < MAX_ROWID) {
    if (read(bad + step) !== null) {
      good = bad + step;
      break;
    }
    bad += step;
    step *= 2n;
  }
  if (good === null) return null;
  let ok: bigint = good;
  while (ok - bad > 1n) {
    const mid: bigint = bad + (ok - bad) / 2n;
    if (read(mid) !== null) ok = mid;
    else bad = mid;
  }
  return ok;
}
