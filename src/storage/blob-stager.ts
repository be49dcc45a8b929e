/**
 * Streamed writes (issue 17 stage C): a large bulk argument is written to its shard's chunk file
 * while it arrives, instead of being gathered whole in memory and chunked afterwards.
 *
 * The parser hands a StagedBlob the payload as it reads it; full 256 KiB chunks are compressed
 * (off the loop through the codec pool, as for any chunk) and written CHUNKS_PER_STEP per
 * transaction by the chunk I/O thread (chunk-io.ts; one step per event-loop turn on the loop
 * itself when the thread does not run). The client's socket stays paused while more than
 * STAGE_AHEAD_BYTES wait to be written, so a client costs the server a few chunks, whatever it sends.
 *
 * When the bulk ends, the command receives a marker in place of the bytes: an empty Buffer that
 * stagedBlobOf() maps to this blob. Keyspace.set() takes the blob once its write is queued (the key's row then references
 * it, in the write queue's one small transaction); whoever else sees the marker leaves it alone,
 * and the connection disposes of every blob its command did not take. Until taken the blob is
 * pinned and referenced by no row: a blob disposed of is handed to the store's reclaimer; one
 * staged when the server died is found by the start-up orphan check (its blob_index row is
 * written before its first chunk).
 */
import { CHUNK_BYTES, CHUNKS_PER_STEP, encodeChunk, type ChunkFile } from './chunks.js';
import type { CompressionSettings } from './codecs.js';
import { BlobRef } from './overlay.js';
import type { ValueBuffers } from './value-buffers.js';

/** Raw bytes a staged blob may hold unwritten before its client's socket is paused. */
export const STAGE_AHEAD_BYTES = 4 * CHUNK_BYTES;

/** What a StagedBlob needs from the store (store.ts implements it). */
export interface StagingHost {
  /** A new blob, recorded in the chunk file of `key`'s shard and pinned; throws when the disk is full. */
  openStaged(key: Buffer, size: number): { shard: number; file: ChunkFile; id: number; indexed: boolean };
  /** Unpins a blob no row will reference and hands it to the reclaimer. */
  dropStaged(shard: number, id: number): void;
  /** A chunk write failed: the error as the command reports it (naming the chunk file); a full disk refuses new data. */
  stagingError(shard: number, err: unknown): Error;
  readonly compression: CompressionSettings | null;
  /** Buffers to receive values below the staging threshold into (absent: each value is a new Buffer). */
  readonly valueBuffers?: ValueBuffers;
}

const markers = new WeakMap<Buffer, StagedBlob>();

/**
 * Full-size chunk buffers written and free for the next chunk: without them every 256 KiB of an
 * upload is a new allocation, and garbage the collector leaves around for a while (measured: the
 * server's VmHWM +79 MiB during a 500 MiB SET, against +47 MiB in another run).
 */
const spareChunks: Buffer[] = [];
const MAX_SPARE_CHUNKS = 16;

function chunkBuffer(size: number): Buffer {
  return size === CHUNK_BYTES && spareChunks.length > 0 ? spareChunks.pop()! : Buffer.allocUnsafe(size);
}

/** `raw` was written (SQLite copied it; the codec pool copies what it compresses): reusable. */
function recycle(raw: Buffer): void {
  if (raw.length === CHUNK_BYTES && raw.byteOffset === 0 && raw.buffer.byteLength === CHUNK_BYTES && spareChunks.length < MAX_SPARE_CHUNKS) spareChunks.push(raw);
}

/** The staged blob an argument stands for, if it is a marker. */
export function stagedBlobOf(arg: Buffer): StagedBlob | undefined {
  return arg.length === 0 ? markers.get(arg) : undefined;
}

type State = 'receiving' | 'ready' | 'failed' | 'taken' | 'dropped';

export class StagedBlob {
  /** What the command gets in place of the bytes. */
  readonly marker: Buffer = Buffer.alloc(0);
  readonly shard: number;
  private readonly file: ChunkFile;
  private readonly id: number;
  /** Whether the blob's index row is written; if not, the first chunks' transaction writes it. */
  private indexed: boolean;
  private state: State = 'receiving';
  private current: Buffer | null = null;
  private fill = 0;
  /** Full chunks (and, once ended, the last one) waiting to be written, in order. */
  private readonly queue: Buffer[] = [];
  private queuedBytes = 0;
  private nextSeq = 0;
  private received = 0;
  private ended = false;
  private writing = false;
  private stored = 0;
  private readonly settledWaiters: (() => void)[] = [];
  /** Why the blob could not be stored (the command is answered with it). */
  error: Error | null = null;
  /** Called when the unwritten bytes fall back under STAGE_AHEAD_BYTES (the connection resumes reading). */
  onDrain: () => void = () => {};

  constructor(
    private readonly host: StagingHost,
    key: Buffer,
    readonly size: number,
  ) {
    const opened = host.openStaged(key, size);
    this.shard = opened.shard;
    this.file = opened.file;
    this.id = opened.id;
    this.indexed = opened.indexed;
    markers.set(this.marker, this);
  }

  /** Raw bytes received and not yet written. */
  get pendingBytes(): number {
    return this.queuedBytes + this.fill;
  }

  /** Every chunk written (or the blob failed or was disposed of): the command can run. */
  get settled(): boolean {
    return this.state !== 'receiving';
  }

  /** Resolves once settled. */
  whenSettled(): Promise<void> {
    if (this.settled) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  /** The next bytes of the payload (never more than the declared size in total). */
  write(part: Buffer): void {
    this.received += part.length;
    if (this.state !== 'receiving') return; // failed: the bytes are read and dropped, to keep the stream framed
    let off = 0;
    while (off < part.length) {
      if (this.current === null) {
        this.current = chunkBuffer(Math.min(CHUNK_BYTES, this.size - (this.received - part.length + off)));
        this.fill = 0;
      }
      const n = part.copy(this.current, this.fill, off, Math.min(part.length, off + this.current.length - this.fill));
      this.fill += n;
      off += n;
      if (this.fill === this.current.length) this.enqueue();
    }
    this.kick();
  }

  /** The payload is complete: the marker the command receives in its place. */
  end(): Buffer {
    this.ended = true;
    if (this.current !== null && this.state === 'receiving') this.enqueue();
    this.kick();
    this.settleIfDone();
    return this.marker;
  }

  /** The parser gave up on the bulk (protocol error, client gone). */
  abort(): void {
    this.dispose();
  }

  /** The blob, for the row that will reference it (Keyspace.set); only when ready. */
  ref(): BlobRef {
    // A marker used again (taken, dropped) must not store an empty string in its place.
    if (this.state !== 'ready') throw new Error(`staged value is ${this.state === 'failed' ? `not stored: ${this.error?.message}` : this.state}`);
    return new BlobRef(this.shard, this.id, this.size, this.stored);
  }

  /**
   * A write referencing the blob is queued: from here the write queue owns it, as it owns a value
   * staged from a whole Buffer (a failed write hands it to the reclaimer: WriteQueue onBlobDropped).
   */
  markTaken(): void {
    if (this.state !== 'ready') return;
    this.state = 'taken';
    this.file.unpin(this.id);
  }

  /** Nobody took it: its chunks are reclaimed (after the write in flight, if any). No-op once taken. */
  dispose(): void {
    if (this.state === 'taken' || this.state === 'dropped') return;
    const wasFailed = this.state === 'failed';
    this.state = 'dropped';
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.current = null;
    this.fill = 0;
    this.wake();
    // A failed blob was handed over when it failed; one being written is handed over by its loop.
    if (!wasFailed && !this.writing) this.host.dropStaged(this.shard, this.id);
  }

  private enqueue(): void {
    const c = this.current!;
    this.queue.push(this.fill === c.length ? c : c.subarray(0, this.fill));
    this.queuedBytes += this.fill;
    this.current = null;
    this.fill = 0;
  }

  private kick(): void {
    if (this.writing || this.queue.length === 0 || this.state !== 'receiving') return;
    this.writing = true;
    void this.drainQueue();
  }

  /** Writes the queue, a step per event-loop turn, so other clients run between steps. */
  private async drainQueue(): Promise<void> {
    try {
      while (this.queue.length > 0 && this.state === 'receiving') {
        const batch = this.queue.slice(0, CHUNKS_PER_STEP);
        const encoded = await Promise.all(batch.map(async (raw) => ({ encoded: await encodeChunk(raw, this.host.compression), size: raw.length })));
        if (this.state !== 'receiving') break;
        // Off the event loop when the chunk I/O thread runs (chunk-io.ts); the loop serves others meanwhile.
        this.stored += await this.file.putChunksAsync(this.id, this.nextSeq, encoded, this.indexed ? undefined : this.size);
        this.indexed = true;
        this.nextSeq += batch.length;
        this.queue.splice(0, batch.length);
        for (const raw of batch) {
          this.queuedBytes -= raw.length;
          recycle(raw);
        }
        if (this.pendingBytes < STAGE_AHEAD_BYTES) this.onDrain();
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (err) {
      this.fail(this.host.stagingError(this.shard, err));
    }
    this.writing = false;
    if (this.state === 'dropped') this.host.dropStaged(this.shard, this.id);
    else if (this.queue.length > 0) this.kick();
    else this.settleIfDone();
  }

  private settleIfDone(): void {
    if (this.state === 'receiving' && this.ended && !this.writing && this.queue.length === 0 && this.current === null) {
      this.state = 'ready';
      this.wake();
    }
  }

  private fail(err: Error): void {
    if (this.state !== 'receiving') return;
    this.state = 'failed';
    this.error = err;
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.current = null;
    this.fill = 0;
    this.host.dropStaged(this.shard, this.id);
    this.wake();
    // The rest of the bulk is read and dropped: let the client send it.
    this.onDrain();
  }

  private wake(): void {
    for (const w of this.settledWaiters.splice(0)) w();
  }
}
