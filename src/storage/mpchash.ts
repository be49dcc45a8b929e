/**
 * Multi-probe consistent hashing (Appleton & O'Reilly, 2015): each shard has a few points on a
 * 32-bit ring; a key is hashed PROBES times and goes to the shard whose point follows the closest
 * probe. Probes even out the spread that few points alone would leave uneven, so adding a shard
 * moves only about 1/N of the keys.
 *
 * Placement is part of the on-disk format: the hash, the seeds and the probe sequence below must
 * never change, or existing keys would be looked up on the wrong shard. A unit test pins known
 * key → shard answers.
 */

const PROBES = 21;
/** Points per shard. One point each leaves arcs so uneven that 21 probes cannot fix them. */
const POINTS_PER_SHARD = 16;
const SEED_A = 0x9747b28c;
const SEED_B = 0x5bd1e995;
/** The ring is cut into 2^BUCKET_BITS equal arcs; each knows its first point, so a probe finds its successor in a step or two. */
const BUCKET_BITS = 12;
const BUCKET_SHIFT = 32 - BUCKET_BITS;

export class ShardRing {
  /** Shard points sorted by position; parallel arrays keep the lookup loop allocation-free. */
  private readonly points: Uint32Array;
  private readonly owners: Uint16Array;
  /** bucketStart[b]: index of the first point at or after arc b's start (points.length past the last). */
  private readonly bucketStart: Uint32Array;

  constructor(readonly shardCount: number) {
    if (!Number.isInteger(shardCount) || shardCount < 1 || shardCount > 65535) {
      throw new RangeError(`shard count must be 1..65535, got ${shardCount}`);
    }
    const placed = Array.from({ length: shardCount * POINTS_PER_SHARD }, (_, i) => {
      const id = Math.floor(i / POINTS_PER_SHARD);
      return { id, point: murmur3(Buffer.from(`shard-${id}-${i % POINTS_PER_SHARD}`), 0) };
    }).sort((a, b) => a.point - b.point || a.id - b.id);
    this.points = Uint32Array.from(placed.map((p) => p.point));
    this.owners = Uint16Array.from(placed.map((p) => p.id));
    const buckets = 1 << BUCKET_BITS;
    this.bucketStart = new Uint32Array(buckets + 1);
    let at = 0;
    for (let b = 0; b <= buckets; b++) {
      const start = b === buckets ? 0x1_0000_0000 : b * 2 ** BUCKET_SHIFT;
      while (at < this.points.length && this.points[at] < start) at++;
      this.bucketStart[b] = at;
    }
  }

  /** The shard id that owns `key`. */
  shardOf(key: Uint8Array): number {
    if (this.shardCount === 1) return 0;
    // Double hashing gives the probe sequence h1 + i*h2 from two hashes instead of 21.
    const h1 = murmur3(key, SEED_A);
    const h2 = murmur3(key, SEED_B) | 1;
    let best = 0;
    let bestDistance = 0x1_0000_0000;
    for (let i = 0; i < PROBES; i++) {
      const probe = (h1 + Math.imul(i, h2)) >>> 0;
      const at = this.successor(probe);
      const distance = (this.points[at] - probe) >>> 0; // clockwise, modulo 2^32
      if (distance < bestDistance) {
        bestDistance = distance;
        best = at;
      }
    }
    return this.owners[best];
  }

  /** Index of the first point at or after `pos`, wrapping to 0. */
  private successor(pos: number): number {
    const b = pos >>> BUCKET_SHIFT;
    let i = this.bucketStart[b];
    const end = this.bucketStart[b + 1];
    while (i < end && this.points[i] < pos) i++;
    return i === this.points.length ? 0 : i;
  }
}

/** MurmurHash3 x86 32-bit. */
export function murmur3(data: Uint8Array, seed: number): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed >>> 0;
  const len = data.length;
  const blocks = len & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  switch (len & 3) {
    case 3:
      k ^= data[blocks + 2] << 16;
    // falls through
    case 2:
      k ^= data[blocks + 1] << 8;
    // falls through
    case 1:
      k ^= data[blocks];
      k = Math.imul(k, c1);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, c2);
      h ^= k;
  }
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
