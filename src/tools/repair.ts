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
 */
import { existsSync, renameSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { checksum } from '../storage/checksum.js';
import { describeKey } from '../storage/key-names.js';
import { registerSlotFunction, schemaTables, shardFiles, shardPath } from '../storage/schema.js';
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
  try {
    // The new file as the server makes it: pragmas, auto_vacuum and every migration.
    new Shard(shard, fresh, { synchronous: 'NORMAL', cache_size_mb: 16, busy_timeout_ms: 5000, mmap_size_mb: 0 }).close();
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
        for (const row of readableRows(src, t.name, cols)) {
          const ns = (row.namespace as Buffer | undefined) ?? null;
          const key = row.key as Buffer;
          const sum = row.checksum as number | null | undefined;
          if (sum !== null && sum !== undefined && checksum(row.data as Buffer) !== sum) {
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
          const keyCols = t.name === 'ns_blobs' ? 'namespace, key' : 'NULL AS namespace, key';
          const order = t.name === 'ns_blobs' ? 'namespace, key' : 'key';
          for (const k of src.prepare(`SELECT ${keyCols} FROM ${t.name} ORDER BY ${order}`).iterate() as IterableIterator<{ namespace: Buffer | null; key: Buffer }>) {
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
  } catch (err) {
    src.close();
    for (const f of shardFiles(fresh)) rmSync(f, { force: true });
    throw new RepairError(`repair of ${file} failed: ${message(err)}`);
  }
  src.close();
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
function* readableRows(db: Database.Database, table: string, cols: string[]): Generator<Record<string, unknown>> {
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
