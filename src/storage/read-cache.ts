/**
 * The value cache of one shard: committed values kept in memory so a hot key is not read back out
 * of SQLite on every GET. Two size classes with budgets of their own, so that one class cannot
 * push the other out:
 *
 * - small values (below 256 KiB), `value_cache_mb`: filled by reads and by committed writes. A
 *   SQLite point read of a small value costs ~6–7 µs on this class of machine (B-tree descent,
 *   pager, a copy into a new Buffer), a hit here well under 1 µs.
 * - large values (256 KiB up to a quarter of the budget), `read_cache_mb`: filled by reads only. A
 *   large value read back out of SQLite's overflow pages costs milliseconds.
 *
 * Bounded by bytes (value, key and a per-entry overhead measured on Node 20), evicted by
 * second chance: a hit only marks the entry, eviction takes from the oldest end and moves marked
 * entries back to the young end, which approximates LRU without re-ordering the map on every hit.
 *
 * What may be in it: only values that are committed and current. The write queue (the keyspace's
 * one write path) invalidates the key when a write executes — the overlay answers reads until the
 * commit — and puts the value back after the commit only if no newer write to the key is pending.
 * A replica's applied batches go through the same invalidate/put. Entries keep their expiry; a
 * read past it misses.
 */
export interface ReadCacheStats {
  hits: number;
  /** Committed reads of this class that the cache did not answer (they went to SQLite). */
  misses: number;
  /** Bytes charged: values, keys and per-entry overhead. */
  bytes: number;
  entries: number;
}

/** A cached committed value and its expiry, as reads need both. */
export interface CachedValue {
  readonly value: Buffer;
  readonly expiresAt: number | null;
}

interface Entry extends CachedValue {
  /** Bytes charged against the budget. */
  readonly charge: number;
  /** Read since it was last passed over by eviction. */
  ref: boolean;
}

/** Values from this size up are "large": read_cache_mb. Below it, value_cache_mb. */
export const READ_CACHE_MIN_VALUE_BYTES = 256 * 1024;

/**
 * Memory an entry costs besides its value and key bytes: the Map slot, the entry object, the key
 * string and the Buffer object with its backing-store bookkeeping. Measured on Node 20 with 200,000
 * entries of 1 KiB: ~1,630 bytes of RSS each, so ~600 bytes beyond the payload.
 */
const ENTRY_OVERHEAD = 512;

/** One size class: a map in insertion order and its byte budget. */
class CacheClass {
  readonly entries = new Map<string, Entry>();
  bytes = 0;
  hits = 0;
  misses = 0;

  constructor(readonly maxBytes: number) {}

  set(id: string, value: Buffer, expiresAt: number | null, charge: number): void {
    const old = this.entries.get(id);
    if (old !== undefined) this.drop(id, old);
    this.entries.set(id, { value, expiresAt, charge, ref: false });
    this.bytes += charge;
    if (this.bytes > this.maxBytes) this.evict();
  }

  /** Second chance: marked entries go back to the young end once, unmarked ones leave. */
  private evict(): void {
    // Each step evicts or clears a mark, so this ends within two passes.
    for (const [id, e] of this.entries) {
      if (this.bytes <= this.maxBytes) return;
      if (e.ref) {
        e.ref = false;
        this.entries.delete(id);
        this.entries.set(id, e);
      } else {
        this.drop(id, e);
      }
    }
  }

  drop(id: string, e: Entry): void {
    this.entries.delete(id);
    this.bytes -= e.charge;
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  stats(): ReadCacheStats {
    return { hits: this.hits, misses: this.misses, bytes: this.bytes, entries: this.entries.size };
  }
}

export class ReadCache {
  private readonly small: CacheClass;
  private readonly large: CacheClass;
  /**
   * Counts invalidations. A value decoded asynchronously is cached only if no write was executed
   * on this shard while it was decoding (that write might have been to the same key).
   */
  epoch = 0;

  /** Budgets in bytes: large values (read_cache_mb) and small values (value_cache_mb); 0 turns a class off. */
  constructor(largeMaxBytes: number, smallMaxBytes = 0) {
    this.large = new CacheClass(largeMaxBytes);
    this.small = new CacheClass(smallMaxBytes);
  }

  get enabled(): boolean {
    return this.large.maxBytes > 0 || this.small.maxBytes > 0;
  }

  /** Whether a value of this size would be cached. */
  wants(size: number): boolean {
    if (size >= READ_CACHE_MIN_VALUE_BYTES) return this.large.maxBytes > 0 && size <= this.large.maxBytes / 4;
    return this.small.maxBytes > 0 && size + ENTRY_OVERHEAD <= this.small.maxBytes / 4;
  }

  get(ns: Buffer | null, key: Buffer, now: number): CachedValue | undefined {
    if (this.small.entries.size === 0 && this.large.entries.size === 0) return undefined;
    const id = cacheKey(ns, key);
    let cls = this.small;
    let e = cls.entries.get(id);
    if (e === undefined) {
      cls = this.large;
      e = cls.entries.get(id);
      if (e === undefined) return undefined;
    }
    if (e.expiresAt !== null && e.expiresAt <= now) {
      cls.drop(id, e);
      return undefined;
    }
    e.ref = true;
    cls.hits++;
    return e;
  }

  /** A committed value read from SQLite because get() had nothing: counted as a miss, kept if wanted. */
  fill(ns: Buffer | null, key: Buffer, value: Buffer, expiresAt: number | null): void {
    this.classOf(value.length).misses++;
    this.put(ns, key, value, expiresAt);
  }

  /** Keeps a committed, current value (a read's, or a write's after its commit). */
  put(ns: Buffer | null, key: Buffer, value: Buffer, expiresAt: number | null): void {
    if (!this.wants(value.length)) return;
    const id = cacheKey(ns, key);
    // A value parsed from a socket read may be a slice of a larger buffer: keep only its bytes.
    const own = value.buffer.byteLength > 8192 && value.length * 2 < value.buffer.byteLength ? Buffer.from(value) : value;
    const cls = this.classOf(value.length);
    cls.set(id, own, expiresAt, value.length + id.length + ENTRY_OVERHEAD);
    // A key lives in one class at a time: its value may have changed size.
    const other = cls === this.small ? this.large : this.small;
    const stale = other.entries.get(id);
    if (stale !== undefined) other.drop(id, stale);
  }

  /** A write to this key was executed. */
  invalidate(ns: Buffer | null, key: Buffer): void {
    this.epoch++;
    if (this.small.entries.size === 0 && this.large.entries.size === 0) return;
    const id = cacheKey(ns, key);
    for (const cls of [this.small, this.large]) {
      const e = cls.entries.get(id);
      if (e !== undefined) cls.drop(id, e);
    }
  }

  /** Every field of a namespace was deleted. */
  invalidateNamespace(ns: Buffer): void {
    this.epoch++;
    const prefix = cacheKey(ns, Buffer.alloc(0));
    for (const cls of [this.small, this.large]) {
      for (const [id, e] of cls.entries) if (id.startsWith(prefix)) cls.drop(id, e);
    }
  }

  clear(): void {
    this.epoch++;
    this.small.clear();
    this.large.clear();
  }

  /** Large values (read_cache_mb). */
  stats(): ReadCacheStats {
    return this.large.stats();
  }

  /** Small values (value_cache_mb). */
  smallStats(): ReadCacheStats {
    return this.small.stats();
  }

  private classOf(size: number): CacheClass {
    return size >= READ_CACHE_MIN_VALUE_BYTES ? this.large : this.small;
  }
}

/** Plain keys and namespaced fields in one map: the namespace's length keeps them apart. */
function cacheKey(ns: Buffer | null, key: Buffer): string {
  return ns === null ? `k${key.toString('latin1')}` : `n${ns.length}:${ns.toString('latin1')}${key.toString('latin1')}`;
}
