/**
 * Reusable receive buffers for the values a SET of 256 KiB – 1 MiB carries (above that, values are
 * staged into chunks while they arrive: blob-stager.ts).
 *
 * Why: such a value used to be a new Buffer that lived from its last socket read to its commit.
 * With ten clients writing, that spans V8 scavenges, so most values were promoted to the old
 * generation, and V8 starts a full mark-compact for every 64 MiB of external memory it sees grow:
 * 38 mark-compacts and about a third of the server's CPU per 2,000 SETs of 1 MiB
 * (docs/benchmarks.md, "SET 1 MiB: receive buffers"). A buffer the server keeps and fills again
 * allocates nothing.
 *
 * Ownership is what makes reuse safe. The parser takes a buffer for one bulk argument (lend). It goes
 * back to the free list only through recycle(), which the write queue calls after the successful
 * commit of the one write that claimed it, when no read took the value from the overlay. Every other
 * fate — an argument that is no SET's value (PUBLISH, ECHO, a key), a value a reader got from the
 * overlay (GET's reply may still be writing it), a value claimed by two writes, a failed commit —
 * means it is never recycled and the collector frees it as before. So a mistake here can only cost
 * a reuse, never hand out bytes someone still reads.
 */
import { CHUNK_THRESHOLD } from './chunks.js';
import { READ_CACHE_MIN_VALUE_BYTES } from './read-cache.js';

/**
 * Payload capacities of the size classes. The smallest is the read cache's large class: a
 * committed value of that size is never kept by the cache (ReadCache.put invalidates instead),
 * while a smaller one may be kept by reference — and a recycled buffer must be nobody's.
 */
const CLASSES = [READ_CACHE_MIN_VALUE_BYTES, 2 * READ_CACHE_MIN_VALUE_BYTES, CHUNK_THRESHOLD] as const;
/** Room after the payload for the bulk's CRLF, which the parser reads into the same buffer. */
const TRAILER = 2;
/** Idle buffers kept, all classes together: enough for tens of clients writing at once. */
const MAX_FREE_BYTES = 24 * 1024 * 1024;
/** Idle buffers are let go after this long without a lend: a quiet server gives the memory back. */
const IDLE_MS = 2000;

type State = 'parsing' | 'claimed' | 'escaped' | 'free';

export class ValueBuffers {
  private readonly free: Buffer[][] = CLASSES.map(() => []);
  private freeBytes = 0;
  /** Every buffer this pool made, by backing store, while it lives: the collector drops the entry with it. */
  private readonly states = new WeakMap<ArrayBufferLike, State>();
  private idleTimer: NodeJS.Timeout | null = null;
  private lentSinceTimer = false;
  lends = 0;
  reuses = 0;
  recycled = 0;

  /** Smallest and largest payload the pool serves. */
  static readonly minLength = CLASSES[0];
  static readonly maxLength = CLASSES[CLASSES.length - 1];

  /**
   * `onTraffic`: called for every bulk of at least the smallest class offered, pooled length or not
   * (the store's malloc thresholds follow them: malloc-trim.ts); smaller ones do not count.
   */
  constructor(private readonly onTraffic: () => void = () => {}) {}

  /**
   * A buffer for a bulk of `length` payload bytes plus its CRLF (its first length + 2 bytes are the
   * caller's to fill), or null when the length is not pooled — or, with `fresh` false, when no idle
   * buffer is there: the parser then gathers the bytes as they come and asks again, fresh, once all
   * are in, so a client that declares a big bulk and sends nothing ties up no new memory.
   */
  lend(length: number, fresh: boolean): Buffer | null {
    if (length >= CLASSES[0]) this.onTraffic();
    const cls = classOf(length);
    if (cls < 0) return null;
    const idle = this.free[cls].pop();
    let buf: Buffer;
    if (idle !== undefined) {
      this.freeBytes -= idle.length;
      buf = idle;
      this.reuses++;
    } else if (fresh) {
      buf = Buffer.allocUnsafeSlow(CLASSES[cls] + TRAILER);
    } else {
      return null;
    }
    this.states.set(buf.buffer, 'parsing');
    this.lends++;
    this.lentSinceTimer = true;
    return buf;
  }

  /**
   * `value` becomes the value of a write. True when this pool lent it and no other write claimed it:
   * then recycle() may return it after that write's commit.
   */
  claim(value: Buffer): boolean {
    const state = this.states.get(value.buffer);
    if (state === 'parsing') {
      this.states.set(value.buffer, 'claimed');
      return true;
    }
    if (state === 'claimed') this.states.set(value.buffer, 'escaped');
    return false;
  }

  /** The write that claimed `value` committed and nobody else read it: its buffer may be lent again. */
  recycle(value: Buffer): void {
    const backing = value.buffer;
    if (this.states.get(backing) !== 'claimed' || value.byteOffset !== 0) return;
    const buf = Buffer.from(backing);
    const cls = CLASSES.findIndex((c) => c + TRAILER === buf.length);
    if (cls < 0 || this.freeBytes + buf.length > MAX_FREE_BYTES) {
      this.states.set(backing, 'escaped');
      return;
    }
    this.states.set(backing, 'free');
    this.free[cls].push(buf);
    this.freeBytes += buf.length;
    this.recycled++;
    this.armIdleTimer();
  }

  /** Bytes of idle buffers held. */
  get idleBytes(): number {
    return this.freeBytes;
  }

  /** Lets every idle buffer go (the collector frees them). */
  trim(): void {
    for (const list of this.free) {
      for (const buf of list) this.states.set(buf.buffer, 'escaped');
      list.length = 0;
    }
    this.freeBytes = 0;
  }

  close(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.trim();
  }

  private armIdleTimer(): void {
    if (this.idleTimer !== null) return;
    this.lentSinceTimer = false;
    this.idleTimer = setTimeout(this.onIdleTimer, IDLE_MS);
    this.idleTimer.unref();
  }

  private readonly onIdleTimer = (): void => {
    this.idleTimer = null;
    if (!this.lentSinceTimer) this.trim();
    else if (this.freeBytes > 0) this.armIdleTimer();
  };
}

function classOf(length: number): number {
  if (length < CLASSES[0]) return -1;
  for (let i = 0; i < CLASSES.length; i++) if (length <= CLASSES[i]) return i;
  return -1;
}
