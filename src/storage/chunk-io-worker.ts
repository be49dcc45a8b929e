/**
 * The chunk I/O thread (chunk-io.ts): writes the chunks of values being staged and reads the
 * chunks of streamed replies, each chunk file through a connection of its own, so neither the
 * SQLite call nor the kernel's write of a 256 KiB chunk runs on the event loop.
 *
 * Chunks leave this thread as ArrayBuffers handed over by transfer (no copy); their CRC-32 is
 * checked here, and a failing one is reported with the same text as ChunkFile's own check.
 */
import { crc32 } from 'node:zlib';
import { parentPort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { Statement } from 'better-sqlite3';
import type { ChunkIOReply, ChunkIORequest } from './chunk-io.js';
import { CHUNK_CACHE_KIB, CHUNK_JOURNAL_SIZE_LIMIT } from './chunks.js';
import { loadGlibcMalloc, trimWhenIdle, tuneMalloc, whenBusy, type GlibcMalloc } from './malloc-trim.js';

const port = parentPort;
if (port === null) throw new Error('chunk-io-worker must run as a worker thread');

interface Connection {
  db: Database.Database;
  busyTimeoutMs: number;
  begin: Statement;
  commit: Statement;
  rollback: Statement;
  index: Statement<[number, number]>;
  chunk: Statement<[number, number, number, Buffer]>;
  map: Statement<[number, number, number]>;
  read: Statement<[number, number], { codec: number; crc: number; size: number; data: Buffer }>;
}
const connections = new Map<string, Connection>();

function connection(path: string): Connection {
  const open = connections.get(path);
  if (open !== undefined) return open;
  throw new Error(`chunk file ${path} is not open in the chunk I/O thread`);
}

function openConnection(msg: Extract<ChunkIORequest, { op: 'open' }>): void {
  const db = new Database(msg.path, { fileMustExist: true });
  try {
    db.pragma(`synchronous = ${msg.synchronous}`);
    db.pragma(`busy_timeout = ${msg.busyTimeoutMs}`);
    db.pragma(`cache_size = ${-CHUNK_CACHE_KIB}`);
    db.pragma(`wal_autocheckpoint = ${msg.autocheckpointPages}`);
    db.pragma(`journal_size_limit = ${CHUNK_JOURNAL_SIZE_LIMIT}`);
    connections.set(msg.path, {
      db,
      busyTimeoutMs: msg.busyTimeoutMs,
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      index: db.prepare('INSERT OR REPLACE INTO blob_index (blob_id, size) VALUES (?, ?)'),
      chunk: db.prepare('INSERT INTO chunks (codec, crc, size, data) VALUES (?, ?, ?, ?)'),
      map: db.prepare('INSERT OR REPLACE INTO blob_chunks (blob_id, seq, chunk_id) VALUES (?, ?, ?)'),
      read: db.prepare('SELECT c.codec, c.crc, c.size, c.data FROM blob_chunks m JOIN chunks c ON c.id = m.chunk_id WHERE m.blob_id = ? AND m.seq = ?'),
    });
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * A chunk file's WAL after a large value is hundreds of MiB. The first commit after the maintenance
 * thread has checkpointed all of it restarts the WAL and cuts the file down to journal_size_limit:
 * measured 134 ms on the event loop for a 500 MiB WAL when that commit was an APPEND's. So once a
 * file has had no staged write for IDLE_RESTART_MS, this thread checkpoints what is left (PASSIVE:
 * writers go on) and, when nothing is left, makes that first commit itself (a write of the schema
 * version it already has). The WAL keeps CHUNK_JOURNAL_SIZE_LIMIT bytes, as when the loop cut it:
 * truncated to nothing, it would need new disk blocks for the next chunk, and a full disk refuses them.
 */
const IDLE_RESTART_MS = 1000;
const idleTimers = new Map<string, NodeJS.Timeout>();

function restartWhenIdle(path: string): void {
  clearTimeout(idleTimers.get(path));
  idleTimers.set(
    path,
    setTimeout(() => {
      idleTimers.delete(path);
      const c = connections.get(path);
      if (c === undefined) return;
      try {
        const [passive] = c.db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
        if (passive.busy !== 0 || passive.log === 0 || passive.log !== passive.checkpointed) return;
        // Not waiting for the lock: the event loop's writes would wait behind this one meanwhile.
        c.db.pragma('busy_timeout = 0');
        try {
          c.begin.run();
          try {
            c.db.pragma(`user_version = ${Number(c.db.pragma('user_version', { simple: true }))}`);
            c.commit.run();
          } finally {
            if (c.db.inTransaction) c.rollback.run();
          }
        } finally {
          c.db.pragma(`busy_timeout = ${c.busyTimeoutMs}`);
        }
      } catch {
        // Busy or damaged: the maintenance thread's checkpoints and the next commit do it.
      }
    }, IDLE_RESTART_MS),
  );
}

function put(msg: Extract<ChunkIORequest, { op: 'put' }>): number {
  restartWhenIdle(msg.path);
  const c = connection(msg.path);
  c.begin.run();
  try {
    if (msg.indexSize !== undefined) c.index.run(msg.blob, msg.indexSize);
    let stored = 0;
    msg.chunks.forEach((ch, i) => {
      const payload = Buffer.from(ch.payload, 0, ch.length);
      const chunkId = Number(c.chunk.run(ch.codec, crc32(payload), ch.size, payload).lastInsertRowid);
      c.map.run(msg.blob, msg.firstSeq + i, chunkId);
      stored += payload.length;
    });
    c.commit.run();
    return stored;
  } catch (err) {
    if (c.db.inTransaction) c.rollback.run();
    throw err;
  }
}

/** An ArrayBuffer holding exactly `b`'s bytes, to be transferred. */
function ownBuffer(b: Buffer): ArrayBuffer {
  if (b.byteOffset === 0 && b.buffer.byteLength === b.length && b.buffer instanceof ArrayBuffer) return b.buffer;
  const copy = new Uint8Array(b.length);
  copy.set(b);
  return copy.buffer;
}

/**
 * glibc's malloc, loaded once the thread starts (off the event loop): its thresholds are fixed at
 * once, before the first large value (malloc-trim.ts); `tuned` unless the environment set them.
 */
const glibcMalloc: Promise<{ m: GlibcMalloc; tuned: boolean } | null> = loadGlibcMalloc().then((m) => (m === null ? null : { m, tuned: tuneMalloc(m) }));

/**
 * Trims on this thread, not the loop: malloc_trim walks every arena, and the loop only waits for it
 * if it allocates while the main arena is being trimmed. No `trimmed` in the reply: no malloc_trim here.
 */
function trim(id: number): void {
  void glibcMalloc.then((glibc) => {
    if (glibc === null) {
      port!.postMessage({ id, ok: true } satisfies ChunkIOReply);
      return;
    }
    try {
      const t = performance.now();
      const trimmed = trimWhenIdle(glibc.m, glibc.tuned);
      port!.postMessage({ id, ok: true, trimmed, millis: performance.now() - t } satisfies ChunkIOReply);
    } catch (err) {
      // Not worth losing the thread over: the next quiet spell tries again.
      port!.postMessage({ id, ok: false, name: 'Error', message: (err as Error).message } satisfies ChunkIOReply);
    }
  });
}

function handle(msg: ChunkIORequest): void {
  try {
    switch (msg.op) {
      case 'open':
        openConnection(msg);
        port!.postMessage({ id: msg.id, ok: true } satisfies ChunkIOReply);
        return;
      case 'close': {
        const c = connections.get(msg.path);
        connections.delete(msg.path);
        clearTimeout(idleTimers.get(msg.path));
        idleTimers.delete(msg.path);
        try {
          c?.db.close();
        } finally {
          Atomics.store(msg.done, 0, 1);
          Atomics.notify(msg.done, 0);
        }
        return;
      }
      case 'autocheckpoint':
        connections.get(msg.path)?.db.pragma(`wal_autocheckpoint = ${msg.pages}`);
        return;
      case 'put':
        port!.postMessage({ id: msg.id, ok: true, stored: put(msg) } satisfies ChunkIOReply);
        return;
      case 'trim':
        trim(msg.id);
        return;
      case 'busy':
        void glibcMalloc.then((glibc) => glibc !== null && whenBusy(glibc.m, glibc.tuned));
        return;
      case 'read': {
        const row = connection(msg.path).read.get(msg.blob, msg.seq);
        if (row === undefined) throw Object.assign(new Error(`chunk ${msg.seq} of blob ${msg.blob} is missing from ${msg.path}`), { name: 'ChunkError' });
        if (crc32(row.data) !== row.crc) throw Object.assign(new Error(`chunk ${msg.seq} of blob ${msg.blob} in ${msg.path} fails its CRC-32 check`), { name: 'ChunkError' });
        const data = ownBuffer(row.data);
        port!.postMessage({ id: msg.id, ok: true, codec: row.codec, crc: row.crc, size: row.size, data } satisfies ChunkIOReply, [data]);
        return;
      }
    }
  } catch (err) {
    const e = err as Error & { code?: unknown };
    port!.postMessage({ id: msg.id, ok: false, name: e.name, message: e.message, code: typeof e.code === 'string' ? e.code : undefined } satisfies ChunkIOReply);
  }
}

port.on('message', handle);
