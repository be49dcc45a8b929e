/**
 * The value cache of one shard: committed values kept in memory so a hot key is not read back out
 * of SQLite on every GET. Two size classes with budgets of their own, so that one class cannot
 * push the other out:
 *
 * - small values (up to 16 KiB), `value_cache_mb`: filled by reads and by committed writes. A
 *   SQLite point read of a small value costs ~6–7 µs on this class of machine (B-tree descent,
 *   pager, a copy into a new Buffer), a hit here well under 1 µs.
 * - large values (256 KiB up to a quarter of the budget), `read_cache_mb`: filled by reads only. A
 *   large value read back out of SQLite's overflow pages costs ~0.3–1 ms per MiB. Their bytes live
 *   in the blocks of a BlockArena (block-arena.ts: one Buffer per cached value was the main cause
 *   of full garbage collections). GET's reply is written straight from the blocks (pin()); every
 *   other reader gets a copy, so no Buffer it holds can change under it.
 *
 * Bounded by bytes (value, key and a per-entry overhead measured on Node 20), least recently used
 * out first.
 *
 * What may be in it: a key's entry is its committed, current value whenever no write to the key
 * is pending. While one is, the overlay answers every read of the key and the entry is not looked
 * at; the write queue (the keyspace's one write path) settles the entry when the last pending write
 * to the key commits — the new value, or nothing after a delete, an expiry change or a failure.
 * A flush empties the entries when it executes; a namespace delete makes its entries stale then
 * (invalidateNamespace). A replica's applied batches
 * go through the same put/invalidate. Entries keep their expiry; a read past it misses.
 */
import { BlockArena, BLOCK_BYTES, blocksFor } from './block-arena.js';
import { murmur3 } from './mpchash.js';

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

/**
 * A large cached value lent to a reply without a copy: its bytes are `pieces` in order (views of
 * the cache's blocks). They stay as they are until release(), which the connection calls once the
 * socket has taken the last of them; releasing twice is harmless.
 */
export interface PinnedValue {
  readonly pieces: readonly Buffer[];
  readonly length: number;
  release(): void;
}

interface Entry extends CachedValue {
  readonly id: number;
  ns: Buffer | null;
  key: Buffer;
  /** A small value's bytes; empty for a large one, whose bytes are in `blocks`. */
  value: Buffer;
  /** A large value's blocks (the last one partly used) and its size; null for a small value. */
  blocks: Buffer[] | null;
  size: number;
  /** Replies still being written from the blocks: a dropped entry's blocks go back to the arena at 0. */
  pins: number;
  expiresAt: number | null;
  /** Bytes charged against the budget. */
  charge: number;
  /** Used since it last reached the old end of the list: it gets a second chance there. */
  used: boolean;
  /** The cache's namespace-delete count when this value was put (ReadCache.invalidateNamespace). */
  born: number;
  /** Neighbours in the list (oldest first). */
  older: Entry | null;
  newer: Entry | null;
}

/** Values from this size up are "large": read_cache_mb. */
export const READ_CACHE_MIN_VALUE_BYTES = 256 * 1024;

/**
 * Values up to this size are "small": value_cache_mb. For them a SQLite read costs several times
 * the copy of the value; from 16 KiB to 256 KiB the copy dominates and a read is ~0.1 ms, and
 * caching them would cost more memory than it saves time: 32 MiB of cached 64 KiB values put
 * ~57 MiB on the scale run's RSS (allocator fragmentation), over its 250 MiB budget.
 */
export const VALUE_CACHE_MAX_VALUE_BYTES = 16 * 1024;

/**
 * Memory an entry costs besides its value and key bytes: the Map slot, the entry object, the key
 * string and the Buffer object with its backing-store bookkeeping. Measured on Node 20 with 200,000
 * entries of 1 KiB: ~1,630 bytes of RSS each, so ~600 bytes beyond the payload.
 */
const ENTRY_OVERHEAD = 512;

/**
 * Used entries one eviction moves back to the new end before it evicts the oldest, used or not:
 * every move clears a mark that a hit set, so the moves are paid for by earlier hits, and this cap
 * bounds what a single write can do.
 */
const SECOND_CHANCES_PER_EVICTION = 1024;

/**
 * Admission of small values read from SQLite into a full cache (a "doorkeeper", as in TinyLFU):
 * a key's first miss only sets a bit of its hash, its second miss within the window lets it in.
 * Measured (GET P16 over 100,000 keys of 1 KiB, a quarter of them fitting, alternating rounds):
 * filling on every miss cost more CPU — the fill, the garbage collector promoting every value read,
 * the eviction of another — than the ~21% of hits it bought; with the cache off the same GETs were
 * cheaper. A key read twice within the window is cached as before; one read once is not.
 * The window is twice as many distinct misses as the class holds entries.
 */
const DOORKEEPER_BITS = 1 << 17;

/**
 * One size class: entries in a map for lookup and in a list for recency, with a byte budget.
 * Keyed by a 30-bit hash of (ns, key), not by a string of the key: building that string costs
 * ~0.35 µs per lookup (a call into C++ for Buffer.toString), hashing the bytes ~0.05 µs. Two keys
 * with the same hash share a slot; the newer one takes it (a cache may forget), and every read
 * checks the key bytes. Recency is a linked list, not the map's insertion order: evicting from the
 * front of a Map that keeps losing its oldest entries walks the holes they leave, every time.
 * A hit only marks its entry (second chance, or CLOCK): moving it to the new end on every hit
 * touched its two neighbours, objects nobody else was using, and those cache misses were the
 * larger part of a hit's cost (profile of GET P16 over 20,000 keys). Eviction moves marked entries
 * to the new end instead, so the order is close to least recently used.
 */
class CacheClass {
  readonly entries = new Map<number, Entry>();
  /** Least recently used end of the list (evicted first) and most recently used end. */
  private oldest: Entry | null = null;
  private newest: Entry | null = null;
  bytes = 0;
  hits = 0;
  misses = 0;
  /** Second chances left to the eviction under way (SECOND_CHANCES_PER_EVICTION). */
  private chances = 0;

  /** `arena`: where a large value's bytes live (the large class); null for small values. */
  constructor(
    readonly maxBytes: number,
    readonly arena: BlockArena | null = null,
  ) {}

  /** The entry of exactly this key, or undefined. */
  find(id: number, ns: Buffer | null, key: Buffer): Entry | undefined {
    const e = this.entries.get(id);
    return e !== undefined && sameKey(e, ns, key) ? e : undefined;
  }

  set(id: number, ns: Buffer | null, key: Buffer, value: Buffer, blocks: Buffer[] | null, size: number, expiresAt: number | null, charge: number, born: number): void {
    let old = this.entries.get(id);
    if (old !== undefined && (old.blocks !== null || blocks !== null)) {
      // Blocks may be pinned by a reply: the entry that holds them is dropped, not reused.
      this.drop(id, old);
      old = undefined;
    }
    let fresh: Entry;
    if (old !== undefined) {
      // The slot is updated in place (a delete and an insert churn the map), whether it held this
      // key or another one with the same hash: either way it holds this key now. No need to read
      // the old key's bytes to tell which.
      this.bytes += charge - old.charge;
      old.ns = ns;
      old.key = key;
      old.value = value;
      old.size = size;
      old.expiresAt = expiresAt;
      old.charge = charge;
      old.used = true;
      old.born = born;
      fresh = old;
    } else {
      fresh = { id, ns, key, value, blocks, size, pins: 0, expiresAt, charge, used: false, born, older: null, newer: null };
      this.entries.set(id, fresh);
      this.append(fresh);
      this.bytes += charge;
    }
    this.chances = SECOND_CHANCES_PER_EVICTION;
    while (this.bytes > this.maxBytes && this.oldest !== null) this.evictOne(fresh);
  }

  /**
   * Blocks for a large value of `size` bytes, evicting least recently used entries until the
   * arena can give them; null when it cannot even then (blocks pinned by replies in flight).
   */
  reserve(size: number): Buffer[] | null {
    const arena = this.arena!;
    const n = blocksFor(size);
    this.chances = SECOND_CHANCES_PER_EVICTION;
    while (!arena.canAlloc(n) && this.oldest !== null) this.evictOne(null);
    return arena.alloc(n);
  }

  /** Evicts the oldest entry, or gives a used one its second chance (see the class comment). */
  private evictOne(fresh: Entry | null): void {
    const e = this.oldest!;
    // The entry just written is not what makes room for itself, unless it is all there is.
    if ((e.used || e === fresh) && e !== this.newest && this.chances-- > 0) {
      e.used = false;
      this.unlink(e);
      this.append(e);
    } else {
      this.drop(e.id, e);
    }
  }

  drop(id: number, e: Entry): void {
    this.entries.delete(id);
    this.unlink(e);
    this.bytes -= e.charge;
    this.giveBack(e);
  }

  /** Lends the entry's blocks: none of them is reused before the PinnedValue is released. */
  pin(e: Entry): PinnedValue {
    const blocks = e.blocks!;
    const last = blocks.length - 1;
    const pieces = blocks.slice();
    pieces[last] = blocks[last].subarray(0, e.size - last * BLOCK_BYTES);
    e.pins++;
    let released = false;
    return {
      pieces,
      length: e.size,
      release: () => {
        if (released) return;
        released = true;
        e.pins--;
        this.giveBack(e);
      },
    };
  }

  clear(): void {
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const e of all) this.giveBack(e);
    this.oldest = null;
    this.newest = null;
    this.bytes = 0;
    // An emptied cache gives its memory back, unless replies still hold some of it.
    this.arena?.trim();
  }

  /** Returns a dropped entry's blocks to the arena once no reply holds them. */
  private giveBack(e: Entry): void {
    if (e.blocks === null) return;
    if (e.pins > 0 || this.entries.get(e.id) === e) return; // pinned, or a pin released while still cached
    this.arena!.release(e.blocks);
    e.blocks = null;
  }

  stats(): ReadCacheStats {
    return { hits: this.hits, misses: this.misses, bytes: this.bytes, entries: this.entries.size };
  }

  private append(e: Entry): void {
    e.older = this.newest;
    e.newer = null;
    if (this.newest !== null) this.newest.newer = e;
    else this.oldest = e;
    this.newest = e;
  }

  private unlink(e: Entry): void {
    if (e.older !== null) e.older.newer = e.newer;
    else this.oldest = e.newer;
    if (e.newer !== null) e.newer.older = e.older;
    else this.newest = e.older;
    e.older = null;
    e.newer = null;
  }
}

export class ReadCache {
  private readonly small: CacheClass;
  private readonly large: CacheClass;
  /** Bits of the hashes of small values missed recently (see DOORKEEPER_BITS). */
  private readonly seen = new Uint32Array(DOORKEEPER_BITS / 32);
  private seenCount = 0;
  /**
   * Counts invalidations. A value decoded asynchronously is cached only if no write was executed
   * on this shard while it was decoding (that write might have been to the same key).
   */
  epoch = 0;
  /** Namespace deletes so far, and the count at the latest delete of each namespace (by hash). */
  private nsDeletes = 0;
  private readonly nsDeletedAt = new Map<number, number>();

  /** Budgets in bytes: large values (read_cache_mb) and small values (value_cache_mb); 0 turns a class off. */
  constructor(largeMaxBytes: number, smallMaxBytes = 0) {
    this.large = new CacheClass(largeMaxBytes, new BlockArena(largeMaxBytes));
    this.small = new CacheClass(smallMaxBytes);
  }

  get enabled(): boolean {
    return this.large.maxBytes > 0 || this.small.maxBytes > 0;
  }

  /** Whether a value of this size would be cached. */
  wants(size: number): boolean {
    if (size >= READ_CACHE_MIN_VALUE_BYTES) return this.large.maxBytes > 0 && size <= this.large.maxBytes / 4;
    return this.small.maxBytes > 0 && size <= VALUE_CACHE_MAX_VALUE_BYTES && size + ENTRY_OVERHEAD <= this.small.maxBytes / 4;
  }

  /**
   * The key's cached value: a small one as it is (cached Buffers never change), a large one as a
   * copy of its blocks, which the caller may keep (GET's reply borrows the blocks instead: pin()).
   */
  get(ns: Buffer | null, key: Buffer, now: number): CachedValue | undefined {
    if (this.small.entries.size === 0 && this.large.entries.size === 0) return undefined;
    const id = hashKey(ns, key);
    let cls = this.small;
    let e = cls.find(id, ns, key);
    if (e === undefined) {
      cls = this.large;
      e = cls.find(id, ns, key);
      if (e === undefined) return undefined;
    }
    if (!this.live(cls, e, now)) return undefined;
    e.used = true;
    cls.hits++;
    return e.blocks === null ? e : { value: Buffer.concat(e.blocks, e.size), expiresAt: e.expiresAt };
  }

  /** Whether the large class holds anything (pin() can only find something then). */
  get holdsLarge(): boolean {
    return this.large.entries.size !== 0;
  }

  /**
   * The key's large cached value lent without a copy; undefined when the key has
   * no large value cached. The caller must release() it once nothing refers to its pieces.
   */
  pin(ns: Buffer | null, key: Buffer, now: number): PinnedValue | undefined {
    if (this.large.entries.size === 0) return undefined;
    const id = hashKey(ns, key);
    const e = this.large.find(id, ns, key);
    if (e === undefined || !this.live(this.large, e, now)) return undefined;
    e.used = true;
    this.large.hits++;
    return this.large.pin(e);
  }

  /** False (and the entry dropped) when it expired or its namespace was deleted since it was put. */
  private live(cls: CacheClass, e: Entry, now: number): boolean {
    if ((e.expiresAt !== null && e.expiresAt <= now) || (e.ns !== null && this.nsDeletedAt.size !== 0 && this.deletedSince(e))) {
      cls.drop(e.id, e);
      return false;
    }
    return true;
  }

  /**
   * A committed value read from SQLite because get() had nothing: counted as a miss of its class,
   * kept if wanted — a small value in a full cache only on its key's second miss (DOORKEEPER_BITS).
   */
  fill(ns: Buffer | null, key: Buffer, value: Buffer, expiresAt: number | null): void {
    if (value.length >= READ_CACHE_MIN_VALUE_BYTES) {
      this.large.misses++;
      this.fillLarge(ns, key, value, expiresAt);
      return;
    }
    if (value.length <= VALUE_CACHE_MAX_VALUE_BYTES) {
      this.small.misses++;
      const charge = value.length + key.length + (ns?.length ?? 0) + ENTRY_OVERHEAD;
      if (this.small.bytes + charge > this.small.maxBytes && !this.admit(hashKey(ns, key))) return;
    }
    this.put(ns, key, value, expiresAt);
  }

  /** Whether this hash was missed recently; if not, it is now. */
  private admit(id: number): boolean {
    const bit = id & (DOORKEEPER_BITS - 1);
    const word = bit >>> 5;
    const mask = 1 << (bit & 31);
    if ((this.seen[word] & mask) !== 0) return true;
    this.seen[word] |= mask;
    // A new window once twice as many keys were missed as the class holds: old misses are forgotten.
    if (++this.seenCount > Math.max(1024, 2 * this.small.entries.size)) {
      this.seen.fill(0);
      this.seenCount = 0;
    }
    return false;
  }

  /**
   * A committed, current value (a read's, or a write's after its commit): a small one is kept; a
   * large one only replaces what was cached for the key — the large class is filled by reads, so a
   * stream of large writes neither pushes out what is being read nor costs a copy each.
   */
  put(ns: Buffer | null, key: Buffer, value: Buffer, expiresAt: number | null): void {
    if (!this.wants(value.length) || value.length >= READ_CACHE_MIN_VALUE_BYTES) {
      this.invalidate(ns, key);
      return;
    }
    const id = hashKey(ns, key);
    // A value parsed from a socket read may be a slice of a larger buffer: keep only its bytes.
    // The key too: the cache holds it for as long as the entry lives.
    this.small.set(id, ns === null ? null : own(ns), own(key), own(value), null, value.length, expiresAt, value.length + key.length + (ns?.length ?? 0) + ENTRY_OVERHEAD, this.nsDeletes);
    // A key lives in one class at a time: its value may have changed size.
    const stale = this.large.find(id, ns, key);
    if (stale !== undefined) this.large.drop(id, stale);
  }

  /** A large value read from SQLite: copied into blocks of the arena, if it can give them. */
  private fillLarge(ns: Buffer | null, key: Buffer, value: Buffer, expiresAt: number | null): void {
    if (!this.wants(value.length)) return;
    const id = hashKey(ns, key);
    const stale = this.small.find(id, ns, key);
    if (stale !== undefined) this.small.drop(id, stale);
    const old = this.large.find(id, ns, key);
    if (old !== undefined) this.large.drop(id, old);
    const blocks = this.large.reserve(value.length);
    if (blocks === null) return;
    for (let i = 0, at = 0; at < value.length; i++, at += BLOCK_BYTES) value.copy(blocks[i], 0, at, Math.min(at + BLOCK_BYTES, value.length));
    const charge = blocks.length * BLOCK_BYTES + key.length + (ns?.length ?? 0) + ENTRY_OVERHEAD;
    this.large.set(id, ns === null ? null : Buffer.from(ns), Buffer.from(key), EMPTY, blocks, value.length, expiresAt, charge, this.nsDeletes);
  }

  /**
   * A write was executed on this shard: a value being decoded meanwhile is not cached (its key's
   * entry may be settled by the write's commit first). The entries themselves stay: the overlay
   * answers for the written key until then.
   */
  written(): void {
    this.epoch++;
  }

  /** The key's committed value is unknown or gone (a delete, an expiry change, a failed write). */
  invalidate(ns: Buffer | null, key: Buffer): void {
    this.epoch++;
    if (this.small.entries.size === 0 && this.large.entries.size === 0) return;
    const id = hashKey(ns, key);
    const s = this.small.find(id, ns, key);
    if (s !== undefined) this.small.drop(id, s);
    const l = this.large.find(id, ns, key);
    if (l !== undefined) this.large.drop(id, l);
  }

  /**
   * Every field of a namespace was deleted. In O(1): its entries (a large namespace's may be
   * hundreds of thousands, which a walk of the cache took 100 ms to drop, on the loop) are marked
   * stale by the namespace's delete count, dropped when a read finds them, evicted otherwise.
   * A namespace with the same hash loses its entries too (a cache may forget). Past
   * NS_DELETES_KEPT namespaces deleted since, the cache starts empty again instead.
   */
  invalidateNamespace(ns: Buffer): void {
    this.epoch++;
    if (this.small.entries.size === 0 && this.large.entries.size === 0) return;
    if (this.nsDeletedAt.size >= NS_DELETES_KEPT) {
      this.clear();
      return;
    }
    this.nsDeletedAt.set(murmur3(ns, NS_SEED), ++this.nsDeletes);
  }

  /** Whether the entry's namespace was deleted after the entry was put. */
  private deletedSince(e: Entry): boolean {
    const at = this.nsDeletedAt.get(murmur3(e.ns!, NS_SEED));
    return at !== undefined && at > e.born;
  }

  clear(): void {
    this.epoch++;
    this.small.clear();
    this.large.clear();
    this.nsDeletedAt.clear();
  }

  /** Large values (read_cache_mb). */
  stats(): ReadCacheStats {
    return this.large.stats();
  }

  /** Small values (value_cache_mb). */
  smallStats(): ReadCacheStats {
    return this.small.stats();
  }
}

const EMPTY = Buffer.alloc(0);

/** Namespace deletes remembered for the entries they made stale (invalidateNamespace). */
const NS_DELETES_KEPT = 4096;

const PLAIN_SEED = 0x2545f491;
const NS_SEED = 0x68e31da4;

/** A 30-bit hash of (ns, key), so the map's keys stay small integers. */
function hashKey(ns: Buffer | null, key: Buffer): number {
  return murmur3(key, ns === null ? PLAIN_SEED : murmur3(ns, NS_SEED)) & 0x3fffffff;
}

function sameKey(e: Entry, ns: Buffer | null, key: Buffer): boolean {
  if (!sameBytes(e.key, key)) return false;
  return ns === null ? e.ns === null : e.ns !== null && sameBytes(e.ns, ns);
}

/** `b` itself, or a copy of its bytes when it is a small part of a much larger buffer. */
function own(b: Buffer): Buffer {
  return b.buffer.byteLength > 8192 && b.length * 2 < b.buffer.byteLength ? Buffer.from(b) : b;
}

/** Byte equality; short keys compare in JS, without a call into C++. */
function sameBytes(a: Buffer, b: Buffer): boolean {
  const n = a.length;
  if (n !== b.length) return false;
  if (n > 64) return a.equals(b);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}
