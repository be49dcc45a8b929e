/**
 * Chunk I/O off the event loop: one thread (chunk-io-worker.ts), with a connection of its own to
 * every chunk file, writes the chunks of staged values and reads the chunks of streamed replies.
 *
 * Why: on the event loop, a chunk commit waits for the kernel's write of its pages (28–58 ms on a
 * busy machine, bench/staged-write-profile.mjs) and every client waits with it; a streamed GET of
 * 500 MiB made 2,000 SQLite reads there. The server's own connection keeps the small writes
 * (a blob derived by APPEND, reclamation steps) and everything else.
 *
 * Both connections are in WAL mode on the same file: chunks committed by one are seen by the
 * other's next read, and blobs never change once written, so the thread reading a pinned blob reads
 * the bytes the command saw. A write transaction of either waits for the other's (busy_timeout).
 */
import { Worker } from 'node:worker_threads';
import { collectYoungGarbage } from './young-gc.js';
import type { SqliteSettings } from './shard.js';

export type ChunkIORequest =
  | { op: 'open'; id: number; path: string; synchronous: SqliteSettings['synchronous']; busyTimeoutMs: number; autocheckpointPages: number }
  | { op: 'close'; id: number; path: string; done: Int32Array }
  | { op: 'autocheckpoint'; id: number; path: string; pages: number }
  | { op: 'put'; id: number; path: string; blob: number; firstSeq: number; indexSize?: number; chunks: { codec: number; size: number; payload: SharedArrayBuffer; length: number }[] }
  | { op: 'read'; id: number; path: string; blob: number; seq: number }
  /** malloc_trim(0) under the idle trim threshold (malloc-trim.ts), once large-value traffic has stopped. */
  | { op: 'trim'; id: number }
  /** Traffic again after a trim: back to the busy trim threshold. */
  | { op: 'busy'; id: number };

export type ChunkIOReply =
  | { id: number; ok: true; stored?: number; codec?: number; crc?: number; size?: number; data?: ArrayBuffer; trimmed?: boolean; millis?: number }
  | { id: number; ok: false; name: string; message: string; code?: string };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** How long close() waits for the thread to close a file's connection before giving up on it. */
const CLOSE_WAIT_MS = 10_000;
/**
 * How long chunk traffic must have stopped before the loop collects the transfer's garbage and the
 * thread trims malloc's free memory, so neither lands between the chunks of a transfer (a trim
 * holds each arena's lock for a few ms: the loop's allocations wait meanwhile).
 */
export const TRIM_IDLE_MS = 1000;

export class ChunkIOError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

export class ChunkIO {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: ChunkIOReply & { ok: true }) => void; reject: (e: Error) => void }>();
  private lostReason: string | null = null;
  private stopped = false;
  /** Called once if the thread dies: chunk files fall back to their own connection. */
  onLost: (reason: string) => void = () => {};
  private lastActivity = 0;
  private trimTimer: NodeJS.Timeout | null = null;
  /**
   * Whether malloc's trim threshold is the idle one: from the start (tuneMalloc), and from a trim
   * until traffic comes, which tells the thread to raise it (whenBusy).
   */
  private idleThreshold = true;
  /**
   * Trims done, how many released memory and their total time on the thread; the scavenges' total
   * time on the loop before them. `unavailable`: this system has no malloc_trim (or no koffi).
   */
  readonly trimStats = { runs: 0, released: 0, millis: 0, gcMillis: 0, unavailable: false };

  constructor() {
    this.worker = new Worker(new URL('./chunk-io-worker.js', import.meta.url));
    this.worker.unref();
    this.worker.on('message', (reply: ChunkIOReply) => this.settle(reply));
    this.worker.on('error', (err) => this.lost(err.message));
    this.worker.on('exit', (code) => this.lost(`chunk I/O thread exited with code ${code}`));
  }

  get alive(): boolean {
    return this.lostReason === null && !this.stopped;
  }

  private settle(reply: ChunkIOReply): void {
    const p = this.pending.get(reply.id);
    if (p === undefined) return;
    this.pending.delete(reply.id);
    if (reply.ok) p.resolve(reply);
    else {
      const err = new ChunkIOError(reply.message, reply.code);
      err.name = reply.name;
      p.reject(err);
    }
  }

  private lost(reason: string): void {
    if (this.lostReason !== null) return;
    this.lostReason = reason;
    for (const p of this.pending.values()) p.reject(new Error(reason));
    this.pending.clear();
    if (!this.stopped) this.onLost(reason);
  }

  request(msg: DistributiveOmit<ChunkIORequest, 'id'>, transfer: ArrayBuffer[] = []): Promise<ChunkIOReply & { ok: true }> {
    if (!this.alive) return Promise.reject(new Error(this.lostReason ?? 'chunk I/O thread stopped'));
    if (msg.op === 'put' || msg.op === 'read') this.noteTraffic();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id }, transfer);
    });
  }

  /** Fire and forget (ordered with the requests around it). */
  tell(msg: DistributiveOmit<ChunkIORequest, 'id'>): void {
    if (this.alive) this.worker.postMessage({ ...msg, id: 0 });
  }

  /**
   * Closes the thread's connection to `path` and waits for it (blocking: a file is renamed or
   * deleted right after, and SQLite deletes a WAL by its name when its last connection closes).
   * Requests for the file sent before run first; the wait is one transaction at most.
   */
  closeSync(path: string): void {
    if (!this.alive) return;
    const done = new Int32Array(new SharedArrayBuffer(4));
    this.worker.postMessage({ op: 'close', id: 0, path, done } satisfies ChunkIORequest);
    Atomics.wait(done, 0, 0, CLOSE_WAIT_MS);
  }

  /**
   * Traffic of large values — a chunk written or read by the thread, or (Store.noteLargeTraffic) a
   * large value received or read on the loop: once there has been none for TRIM_IDLE_MS, the
   * thread gives malloc's free pages back (malloc-trim.ts trimWhenIdle). Reclaiming a deleted
   * value's chunks does not count: it runs through the loop's own connection, whose page cache is
   * bounded (CHUNK_CACHE_KIB), and waiting for it would put the trim seconds after the transfer.
   */
  noteTraffic(): void {
    this.lastActivity = performance.now();
    if (this.idleThreshold) {
      // After the start or the trim in the thread's queue: the threshold stays low until values move.
      this.idleThreshold = false;
      this.tell({ op: 'busy' });
    }
    if (this.trimTimer === null && this.alive && !this.trimStats.unavailable) this.armTrim(TRIM_IDLE_MS);
  }

  private armTrim(ms: number): void {
    this.trimTimer = setTimeout(() => this.trimIfIdle(), ms);
    this.trimTimer.unref();
  }

  private trimIfIdle(): void {
    this.trimTimer = null;
    const quiet = performance.now() - this.lastActivity;
    if (quiet < TRIM_IDLE_MS || this.pending.size > 0) {
      this.armTrim(Math.max(TRIM_IDLE_MS - quiet, 10));
      return;
    }
    // The transfer's last buffers are garbage no collection has freed yet: free them, then trim.
    const t = performance.now();
    collectYoungGarbage();
    this.trimStats.gcMillis += performance.now() - t;
    this.idleThreshold = true;
    this.request({ op: 'trim' }).then(
      (reply) => {
        if (reply.trimmed === undefined) {
          this.trimStats.unavailable = true;
          return;
        }
        this.trimStats.runs++;
        if (reply.trimmed) this.trimStats.released++;
        this.trimStats.millis += reply.millis ?? 0;
      },
      () => {},
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.trimTimer !== null) clearTimeout(this.trimTimer);
    this.trimTimer = null;
    await this.worker.terminate();
  }
}
