/**
 * `blobasaur check`: is every shard file sound? SQLite's integrity_check (b-tree structure,
 * indexes against tables, free list), then every row's value against its checksum, then the
 * shard's chunk file (chunk-check.ts: integrity_check, every chunk's CRC-32, every chunked row's
 * blob present with its size and chunk count; orphan blobs counted). Read-only;
 * safe while the server runs (except with [sqlite] locking_mode = "EXCLUSIVE", which locks others out).
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { checksum } from '../storage/checksum.js';
import { describeKey } from '../storage/key-names.js';
import { chunkPathOf, registerSlotFunction, shardPath } from '../storage/schema.js';
import { checkChunkFile } from './chunk-check.js';
import { readShardCount } from './vacuum.js';

export interface ShardCheck {
  shard: number;
  file: string;
  ok: boolean;
  /** Rows whose value was read and matched its checksum (or has none). */
  rows: number;
  /** integrity_check's findings and checksum mismatches, at most MAX_PROBLEMS of them. */
  problems: string[];
  /** Values stored in chunks whose blob was found whole, and the chunks that passed their CRC-32. */
  chunkedValues: number;
  chunks: number;
  /** Blobs of the chunk file referenced by nothing (a kill mid-write; the server reclaims them at start). */
  orphanBlobs: number;
}

/** Problems reported per shard: integrity_check lists one line per bad cell, which can be thousands. */
const MAX_PROBLEMS = 20;

export function checkShardFile(shard: number, file: string): ShardCheck {
  const problems: string[] = [];
  let rows = 0;
  let found = { blobs: 0, chunks: 0, orphans: 0 };
  const note = (p: string): void => {
    if (problems.length < MAX_PROBLEMS) problems.push(p);
  };
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    // integrity_check verifies the slot indexes, which needs the function their columns call.
    registerSlotFunction(db);
  } catch (err) {
    return { shard, file, ok: false, rows, problems: [`cannot open: ${message(err)}`], chunkedValues: 0, chunks: 0, orphanBlobs: 0 };
  }
  try {
    db.pragma('busy_timeout = 2000');
    try {
      for (const line of db.pragma(`integrity_check(${MAX_PROBLEMS})`, { simple: false }) as { integrity_check: string }[]) {
        if (line.integrity_check !== 'ok') note(line.integrity_check);
      }
    } catch (err) {
      refuseLocked(file, err);
      note(`integrity_check failed: ${message(err)}`);
    }
    for (const table of ['blobs', 'ns_blobs'] as const) {
      const hasChecksum = (db.pragma(`table_info(${table})`) as { name: string }[]).some((c) => c.name === 'checksum');
      const cols = `${table === 'ns_blobs' ? 'namespace' : 'NULL'} AS ns, key, data, ${hasChecksum ? 'checksum' : 'NULL'} AS checksum`;
      try {
        for (const row of db.prepare(`SELECT ${cols} FROM ${table}`).iterate() as IterableIterator<Row>) {
          if (row.checksum !== null && checksum(row.data) !== row.checksum) note(`${table}: stored value of ${describeKey(row.ns, row.key)} is corrupt: checksum mismatch`);
          else rows++;
        }
      } catch (err) {
        refuseLocked(file, err);
        note(`${table}: reading the rows failed: ${message(err)}`);
      }
    }
    const chunkFile = chunkPathOf(file);
    let chunks: Database.Database | null = null;
    try {
      if (existsSync(chunkFile)) chunks = new Database(chunkFile, { readonly: true, fileMustExist: true });
    } catch (err) {
      note(`chunk file ${chunkFile} cannot be opened: ${message(err)}`);
    }
    try {
      if (chunks !== null) chunks.pragma('busy_timeout = 2000');
      const c = checkChunkFile(db, chunks, note);
      found = c;
    } catch (err) {
      refuseLocked(chunkFile, err);
      note(`chunk file: ${message(err)}`);
    } finally {
      chunks?.close();
    }
  } finally {
    db.close();
  }
  return { shard, file, ok: problems.length === 0, rows, problems, chunkedValues: found.blobs, chunks: found.chunks, orphanBlobs: found.orphans };
}

export interface Row {
  ns: Buffer | null;
  key: Buffer;
  data: Buffer;
  checksum: number | null;
}

/** Checks every shard of a data directory, in order; `progress` hears of each as it is done. */
export function checkDataDir(dataDir: string, progress: (c: ShardCheck) => void = () => {}): ShardCheck[] {
  const shards = readShardCount(dataDir);
  const out: ShardCheck[] = [];
  for (let id = 0; id < shards; id++) {
    const file = shardPath(dataDir, id);
    const c = existsSync(file) ? checkShardFile(id, file) : { shard: id, file, ok: false, rows: 0, problems: ['file is missing'], chunkedValues: 0, chunks: 0, orphanBlobs: 0 };
    out.push(c);
    progress(c);
  }
  return out;
}

/** A file locked by another process is not a damaged one: the check stops and says why. */
function refuseLocked(file: string, err: unknown): void {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))) {
    throw new Error(`${file} is locked by another process: a server running with [sqlite] locking_mode = "EXCLUSIVE" (stop it first), or a repair or migration`);
  }
}

export function message(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  const text = err instanceof Error ? err.message : String(err);
  return typeof code === 'string' ? `${text} (${code})` : text;
}
