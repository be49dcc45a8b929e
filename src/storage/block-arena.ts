/**
 * Memory for the cache of large values (read-cache.ts): fixed-size blocks carved from slabs that
 * stay allocated while the cache is in use, instead of one Buffer per cached value.
 *
 * Why: a cached value lives long enough to reach V8's old generation, and an old Buffer's memory is
 * given back only by a full mark-compact. With one Buffer per value, every large value that the
 * cache took in and later evicted was such garbage: GET of 1 MiB values over a working set larger
 * than the cache ran ~30 mark-compacts a second, a third of the server's CPU (docs/benchmarks.md,
 * "GET 1 MiB"). Blocks are reused instead; a value read from SQLite is copied into blocks and its
 * own Buffer dies young, which a scavenge collects cheaply.
 *
 * A block handed out is not reused until it is released: the cache releases an entry's blocks when
 * the entry is gone and no reply still being written refers to them (read-cache.ts, pins).
 */
export const BLOCK_BYTES = 64 * 1024;
/** Blocks allocated together, as one ArrayBuffer (1 MiB): fewer, larger allocations that live as long as the arena. */
const BLOCKS_PER_SLAB = 16;

export class BlockArena {
  private free: Buffer[] = [];
  private held = 0;

  /** `maxBytes` bounds the blocks the arena ever holds, free or in use. */
  constructor(maxBytes: number) {
    this.maxBlocks = Math.floor(maxBytes / BLOCK_BYTES);
  }

  readonly maxBlocks: number;

  /** Blocks the arena holds (free or in use). */
  get heldBlocks(): number {
    return this.held;
  }

  get freeBlocks(): number {
    return this.free.length;
  }

  /** Whether `n` blocks can be handed out now, from free blocks or by growing. */
  canAlloc(n: number): boolean {
    return this.free.length + (this.maxBlocks - this.held) >= n;
  }

  /** `n` blocks, or null when the arena is at its bound and has fewer than `n` free. */
  alloc(n: number): Buffer[] | null {
    if (!this.canAlloc(n)) return null;
    while (this.free.length < n) this.grow();
    return this.free.splice(this.free.length - n, n);
  }

  release(blocks: readonly Buffer[]): void {
    for (const b of blocks) this.free.push(b);
  }

  /** Lets go of all memory when no block is in use (after the cache was emptied); false otherwise. */
  trim(): boolean {
    if (this.free.length !== this.held) return false;
    this.free = [];
    this.held = 0;
    return true;
  }

  private grow(): void {
    const blocks = Math.min(BLOCKS_PER_SLAB, this.maxBlocks - this.held);
    const slab = Buffer.allocUnsafeSlow(blocks * BLOCK_BYTES);
    for (let i = 0; i < blocks; i++) this.free.push(slab.subarray(i * BLOCK_BYTES, (i + 1) * BLOCK_BYTES));
    this.held += blocks;
  }
}

/** Blocks a value of `size` bytes takes. */
export function blocksFor(size: number): number {
  return Math.ceil(size / BLOCK_BYTES);
}
