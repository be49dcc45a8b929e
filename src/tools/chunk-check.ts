/**
 * The offline tools' look at a shard's chunk file (values over 1 MiB, storage/chunks.ts): every
 * chunk against its CRC-32, every blob's chunk list, and every chunked row of the shard file
 * against the blob it references (present, the row's size, the chunk count that size needs).
 * Blobs no row references and that are not waiting in dead_blobs are orphans: left by a kill
 * mid-write (the server reclaims them at start), reported but not damage.
 */
import { crc32 } from 'node:zlib';
import type Database from 'better-sqlite3';
import { CHUNK_BYTES, chunkCount } from '../storage/chunks.js';
import { describeKey } from '../storage/key-names.js';

export interface ChunkFileCheck {
  /** Chunks read and found sound. */
  chunks: number;
  /** Blobs referenced by rows and found whole. */
  blobs: number;
  /** Blobs in the chunk file that no row references and that are not waiting for reclamation. */
  orphans: number;
  problems: string[];
}

interface ChunkedRow {
  ns: Buffer | null;
  key: Buffer;
  size: number;
  blob_id: number;
}

/** Chunked rows of a shard file (none before schema migration 5). */
export function* chunkedRows(shard: Database.Database): Generator<ChunkedRow> {
  const has = (shard.pragma('table_info(blobs)') as { name: string }[]).some((c) => c.name === 'blob_id');
  if (!has) return;
  yield* shard.prepare('SELECT NULL AS ns, key, size, blob_id FROM blobs WHERE blob_id IS NOT NULL').iterate() as IterableIterator<ChunkedRow>;
  yield* shard.prepare('SELECT namespace AS ns, key, size, blob_id FROM ns_blobs WHERE blob_id IS NOT NULL').iterate() as IterableIterator<ChunkedRow>;
}

/** Why blob `id` cannot serve a value of `size` bytes, or null when it can. `badChunks`: chunk ids failing their CRC. */
export function blobProblem(chunks: Database.Database, id: number, size: number, badChunks: ReadonlySet<number>): string | null {
  const indexed = chunks.prepare<[number], { size: number }>('SELECT size FROM blob_index WHERE blob_id = ?').get(id);
  if (indexed === undefined) return `blob ${id} is missing from the chunk file`;
  if (indexed.size !== size) return `blob ${id} holds ${indexed.size} bytes, the row says ${size}`;
  const map = chunks
    .prepare<[number], { seq: number; chunk_id: number; size: number | null }>(
      'SELECT m.seq, m.chunk_id, c.size FROM blob_chunks m LEFT JOIN chunks c ON c.id = m.chunk_id WHERE m.blob_id = ? ORDER BY m.seq',
    )
    .all(id);
  const n = chunkCount(size);
  if (map.length !== n) return `blob ${id} has ${map.length} chunks, a value of ${size} bytes needs ${n}`;
  for (let seq = 0; seq < n; seq++) {
    const m = map[seq];
    const want = seq < n - 1 ? CHUNK_BYTES : size - (n - 1) * CHUNK_BYTES;
    if (m.seq !== seq) return `blob ${id} lacks chunk ${seq}`;
    if (m.size === null) return `chunk ${seq} of blob ${id} is missing`;
    if (m.size !== want) return `chunk ${seq} of blob ${id} holds ${m.size} bytes, not ${want}`;
    if (badChunks.has(m.chunk_id)) return `chunk ${seq} of blob ${id} fails its CRC-32 check`;
  }
  return null;
}

/**
 * Checks `chunks` (the chunk file, null when it does not exist) against the chunked rows of
 * `shard`; `note` receives each problem (the caller caps them).
 */
export function checkChunkFile(shard: Database.Database, chunks: Database.Database | null, note: (problem: string) => void): ChunkFileCheck {
  const out: ChunkFileCheck = { chunks: 0, blobs: 0, orphans: 0, problems: [] };
  const problem = (p: string): void => {
    out.problems.push(p);
    note(p);
  };
  const bad = new Set<number>();
  if (chunks !== null) {
    for (const line of chunks.pragma('integrity_check(20)', { simple: false }) as { integrity_check: string }[]) {
      if (line.integrity_check !== 'ok') problem(`chunk file: ${line.integrity_check}`);
    }
    try {
      for (const c of chunks.prepare('SELECT id, crc, data FROM chunks').iterate() as IterableIterator<{ id: number; crc: number; data: Buffer }>) {
        if (crc32(c.data) === c.crc) out.chunks++;
        else bad.add(c.id);
      }
    } catch (err) {
      problem(`chunk file: reading the chunks failed: ${(err as Error).message}`);
    }
  }
  const referenced = new Set<number>();
  for (const row of chunkedRows(shard)) {
    referenced.add(row.blob_id);
    const why = chunks === null ? 'the chunk file is missing' : blobProblem(chunks, row.blob_id, row.size, bad);
    if (why === null) out.blobs++;
    else problem(`stored value of ${describeKey(row.ns, row.key)} cannot be read: ${why}`);
  }
  if (chunks !== null) {
    const hasDead = shard.prepare("SELECT 1 FROM sqlite_master WHERE name = 'dead_blobs'").get() !== undefined;
    const dead = new Set<number>(hasDead ? (shard.prepare('SELECT blob_id FROM dead_blobs').pluck().all() as number[]) : []);
    for (const id of chunks.prepare('SELECT blob_id FROM blob_index').pluck().iterate() as IterableIterator<number>) {
      if (!referenced.has(id) && !dead.has(id)) out.orphans++;
    }
    // A bad chunk no referenced blob uses is still damage to the file (a dead blob's, or an orphan's).
    if (bad.size > 0 && !out.problems.some((p) => /fails its CRC-32 check/.test(p))) problem(`chunk file: ${bad.size} chunks fail their CRC-32 check`);
  }
  return out;
}
