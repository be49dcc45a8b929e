/**
 * A small cache of large committed values for one shard, so that a hot large blob is not read back
 * out of SQLite's overflow pages (and copied twice) on every GET. Bounded by bytes, least recently
 * used first out. Small values are not cached: SQLite reads them about as fast as a lookup here.
 *
 * The write queue invalidates an entry whenever a write to its key is executed (before its commit,
 * like the overlay that then answers reads), so the cache only ever holds what is committed and
 * current. Entries keep their expiry, and a read past it misses.
 */
export interface ReadCacheStats {
  hits: number;
  misses: number;
  bytes: number;
  entries: number;
}

/** A cached committed value and its expiry, as reads need both. */
export interface CachedValue {
  readonly value: Buffer;
  readonly expiresAt: number | null;
}

type Entry = CachedValue;

/** Values smaller than this are served from SQLite: a 64 KiB value reads in ~0.15 ms, a 1 MiB one in 2–3 ms. */
export const READ_CACHE_MIN_VALUE_BYTES = 256 * 1024;

export class ReadCache {
  /** Map order is recency order: a hit moves the entry to the end, eviction takes from the front. */
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  hits = 0;
  misses = 0;
  /**
   * Counts invalidations. A value decoded asynchronously is cached only if no write was executed
   * on this shard while it was decoding (that write might have been to the same key).
   */
  epoch = 0;

  constructor(private readonly maxBytes: number) {}

  get enabled(): boolean {
    return this.maxBytes > 0;
  }

  /** Whether a value of this size would be cached. */
  wants(size: number): boolean {
    return this.maxBytes > 0 && size >= READ_CACHE_MIN_VALUE_BYTES && size <= this.maxBytes / 4;
  }

  get(ns: Buffer | null, key: Buffer, now: number): CachedValue | undefined {
    if (this.entries.size === 0) return undefined;
    const id = cacheKey(ns, key);
    const e = this.entries.get(id);
    if (e === undefined) {
      this.misses++;
      return undefined;
    }
    if (e.expiresAt !== null && e.expiresAt <= now) {
      this.drop(id, e);
      this.misses++;
      return undefined;
    }
    this.entries.delete(id);
    this.entries.set(id, e);
    this.hits++;
    return e;
  }

  put(ns: Buffer | null, key: Buffer, value: Buffer, expiresAt: number | null): void {
    if (!this.wants(value.length)) return;
    const id = cacheKey(ns, key);
    const old = this.entries.get(id);
    if (old !== undefined) this.drop(id, old);
    this.entries.set(id, { value, expiresAt });
    this.bytes += value.length;
    for (const [oldest, e] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.drop(oldest, e);
    }
  }

  /** A write to this key was executed. */
  invalidate(ns: Buffer | null, key: Buffer): void {
    this.epoch++;
    if (this.entries.size === 0) return;
    const id = cacheKey(ns, key);
    const e = this.entries.get(id);
    if (e !== undefined) this.drop(id, e);
  }

  /** Every field of a namespace was deleted. */
  invalidateNamespace(ns: Buffer): void {
    this.epoch++;
    if (this.entries.size === 0) return;
    const prefix = cacheKey(ns, Buffer.alloc(0));
    for (const [id, e] of this.entries) if (id.startsWith(prefix)) this.drop(id, e);
  }

  clear(): void {
    this.epoch++;
    this.entries.clear();
    this.bytes = 0;
  }

  stats(): ReadCacheStats {
    return { hits: this.hits, misses: this.misses, bytes: this.bytes, entries: this.entries.size };
  }

  private drop(id: string, e: Entry): void {
    this.entries.delete(id);
    this.bytes -= e.value.length;
  }
}

/** Plain keys and namespaced fields in one map: the namespace's length keeps them apart. */
function cacheKey(ns: Buffer | null, key: Buffer): string {
  return ns === null ? `k${key.toString('latin1')}` : `n${ns.length}:${ns.toString('latin1')}${key.toString('latin1')}`;
}
