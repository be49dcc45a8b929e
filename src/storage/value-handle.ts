/**
 * A handle on a value stored in chunks, for commands that should not hold it whole: its size, a
 * byte range (reads only the chunks that cover it), or a stream of its chunks for a reply that
 * leaves as the socket drains.
 *
 * The handle pins its blob: blobs never change, and a pinned one is not reclaimed even if the key
 * is overwritten or deleted meanwhile, so a reader sees exactly the value it started with. Whoever
 * gets a handle must release() it (a streamed reply does when it ends, however it ends).
 */
import { CHUNK_BYTES, chunkCount, type ChunkFile } from './chunks.js';
import type { BlobRef } from './overlay.js';
import { CorruptValueError } from './store.js';

/** A streamed bulk's source (protocol/reply.ts BulkSource): length up front, pieces on demand. */
export interface ChunkStream {
  readonly length: number;
  next(): Promise<Buffer | null>;
  release(): void;
}

export class ValueHandle {
  private released = false;

  constructor(
    private readonly file: ChunkFile,
    private readonly ref: BlobRef,
  ) {
    file.pin(ref.id);
  }

  /** Bytes of the value. */
  get size(): number {
    return this.ref.size;
  }

  private async chunk(seq: number): Promise<Buffer> {
    if (this.released) throw new Error('value handle used after release');
    try {
      return await this.file.readAsync(this.ref.id, seq);
    } catch (err) {
      throw new CorruptValueError(`stored value cannot be read: ${(err as Error).message}`);
    }
  }

  /** Bytes [start, end) of the value (clamped to its size), reading only the chunks that cover them. */
  async range(start: number, end: number): Promise<Buffer> {
    const s = Math.max(0, start);
    const e = Math.min(this.ref.size, end);
    if (e <= s) return Buffer.alloc(0);
    const first = Math.floor(s / CHUNK_BYTES);
    const last = Math.floor((e - 1) / CHUNK_BYTES);
    const parts: Buffer[] = [];
    for (let seq = first; seq <= last; seq++) parts.push(await this.chunk(seq));
    const joined = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    return joined.subarray(s - first * CHUNK_BYTES, e - first * CHUNK_BYTES);
  }

  /** The value's chunks in order, one read ahead; releases the handle when released itself. */
  stream(): ChunkStream {
    const n = chunkCount(this.ref.size);
    let seq = 0;
    let ahead: Promise<Buffer> | null = null;
    const fetch = (): Promise<Buffer> => {
      const p = this.chunk(seq++);
      p.catch(() => {}); // read ahead: whoever asks for it sees the failure
      return p;
    };
    return {
      length: this.ref.size,
      next: async () => {
        if (ahead === null && seq >= n) return null;
        const current = ahead ?? fetch();
        ahead = seq < n ? fetch() : null;
        return current;
      },
      release: () => this.release(),
    };
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.file.unpin(this.ref.id);
  }
}
