/**
 * Placement is the on-disk format: these answers were taken from the implementation and must
 * never change. A failure here means existing data would be looked up on the wrong shard.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { murmur3, ShardRing } from '../../src/storage/mpchash.js';

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

test('murmur3 matches MurmurHash3_x86_32 reference vectors', () => {
  const cases: [Buffer, number, number][] = [
    [latin1(''), 0, 0],
    [latin1(''), 1, 0x514e28b7],
    [latin1(''), 0xffffffff, 0x81f16f39],
    [latin1('hello'), 0, 0x248bfa47],
    [latin1('test'), 0, 0xba6bd213],
    [latin1('Hello, world!'), 1234, 0xfaf6cdb3],
    [latin1('The quick brown fox jumps over the lazy dog'), 0x9747b28c, 0x2fa826cd],
    [latin1('aaaa'), 0x9747b28c, 0x5a97808a],
    [latin1('a'), 0x9747b28c, 0x7fa09ea6],
    [Buffer.from([0xff, 0xff, 0xff, 0xff]), 0, 0x76293b50],
    [Buffer.from([0x21, 0x43, 0x65, 0x87]), 0, 0xf55b516b],
    [Buffer.from([0x21, 0x43, 0x65, 0x87]), 0x5082edee, 0x2362f9de],
    [Buffer.from([0x21, 0x43, 0x65]), 0, 0x7e4a8634],
    [Buffer.from([0x21, 0x43]), 0, 0xa0f7b07a],
    [Buffer.from([0x21]), 0, 0x72661cf4],
    [Buffer.from([0, 0, 0, 0]), 0, 0x2362f9de],
    [Buffer.from([0, 0, 0]), 0, 0x85f0b427],
    [Buffer.from([0, 0]), 0, 0x30f4c306],
    [Buffer.from([0]), 0, 0x514e28b7],
  ];
  for (const [data, seed, want] of cases) {
    assert.equal(murmur3(data, seed), want, `murmur3(${data.toString('hex')}, 0x${seed.toString(16)})`);
  }
});

test('murmur3 hashes a subarray by its own bytes, not its backing buffer', () => {
  const backing = latin1('xxhelloyy');
  assert.equal(murmur3(backing.subarray(2, 7), 0), 0x248bfa47);
});

test('placement is pinned for 4 and 8 shards', () => {
  // [key, shard with 4 shards, shard with 8 shards]
  const pins: [Buffer, number, number][] = [
    [latin1(''), 1, 1],
    [latin1('a'), 1, 5],
    [latin1('b'), 2, 2],
    [latin1('z'), 1, 4],
    [latin1('A'), 1, 7],
    [latin1('user:1'), 0, 5],
    [latin1('user:2'), 1, 1],
    [latin1('user:1000'), 1, 6],
    [latin1('session:abc'), 3, 3],
    [latin1('foo'), 3, 4],
    [latin1('bar'), 3, 3],
    [latin1('hello'), 2, 4],
    [latin1('hello world'), 2, 2],
    [latin1('\x00'), 2, 2],
    [latin1('\x00\xff'), 3, 3],
    [latin1('\xff\xff\xff\xff'), 2, 2],
    [latin1('key:0'), 1, 1],
    [latin1('key:99999'), 0, 5],
    [latin1('{tag}x'), 2, 4],
    [Buffer.from('日本語', 'utf8'), 2, 4],
    [latin1('K'.repeat(1024)), 3, 3],
    [latin1('x'.repeat(1024)), 2, 5],
  ];
  const r4 = new ShardRing(4);
  const r8 = new ShardRing(8);
  const got = pins.map(([k]) => [r4.shardOf(k), r8.shardOf(k)]);
  assert.deepEqual(
    got,
    pins.map(([, s4, s8]) => [s4, s8]),
  );
});

test('placement of 100,000 keys is pinned: per-shard counts and a fingerprint of every answer', () => {
  // [shard count, keys per shard, murmur3 of the 100,000 shard ids as bytes]
  const pins: [number, number[], number][] = [
    [4, [24820, 23997, 25981, 25202], 0x4253cccc],
    [8, [12338, 11869, 13138, 12750, 13126, 13129, 11958, 11692], 0xbeba5fcd],
    [9, [10956, 10562, 11422, 11371, 11689, 11433, 10740, 10571, 11256], 0x567006e7],
    [16, [6242, 6110, 6055, 6522, 6544, 6376, 6314, 6120, 6395, 6650, 6175, 6215, 6098, 6099, 5578, 6507], 0xc3be7e52],
  ];
  for (const [n, counts, fingerprint] of pins) {
    const ring = new ShardRing(n);
    const got = new Array<number>(n).fill(0);
    const placements = new Uint8Array(100_000);
    for (let i = 0; i < placements.length; i++) {
      const s = ring.shardOf(latin1(`key:${i}`));
      got[s]++;
      placements[i] = s;
    }
    assert.deepEqual(got, counts, `${n} shards`);
    assert.equal(murmur3(placements, 0), fingerprint, `${n} shards`);
  }
});

test('a single shard owns everything; invalid shard counts are refused', () => {
  const r1 = new ShardRing(1);
  for (const k of ['', 'a', 'user:1']) assert.equal(r1.shardOf(latin1(k)), 0);
  for (const bad of [0, -1, 1.5, 65536, Number.NaN]) {
    assert.throws(() => new ShardRing(bad), RangeError);
  }
  assert.equal(new ShardRing(65535).shardCount, 65535);
});

test('100,000 keys spread over 8 shards within ±10% of the mean', () => {
  const ring = new ShardRing(8);
  const counts = new Array<number>(8).fill(0);
  const n = 100_000;
  for (let i = 0; i < n; i++) counts[ring.shardOf(latin1(`key:${i}`))]++;
  const mean = n / 8;
  assert.equal(
    counts.reduce((a, b) => a + b, 0),
    n,
  );
  for (const [shard, c] of counts.entries()) {
    assert.ok(c >= mean * 0.9 && c <= mean * 1.1, `shard ${shard} holds ${c} keys, mean ${mean}: ${counts.join(',')}`);
  }
});

test('growing 8 → 9 shards moves about 1/9 of the keys, all to the new shard', () => {
  const r8 = new ShardRing(8);
  const r9 = new ShardRing(9);
  const n = 100_000;
  let moved = 0;
  for (let i = 0; i < n; i++) {
    const k = latin1(`key:${i}`);
    const before = r8.shardOf(k);
    const after = r9.shardOf(k);
    if (before !== after) {
      moved++;
      assert.equal(after, 8, `key:${i} moved from ${before} to ${after}, not to the new shard`);
    }
  }
  const share = moved / n;
  assert.ok(share > 0.05 && share < 0.2, `moved ${moved} of ${n} (${(share * 100).toFixed(1)}%)`);
});

test('placement is deterministic across ring instances', () => {
  const a = new ShardRing(8);
  const b = new ShardRing(8);
  for (let i = 0; i < 1000; i++) {
    const k = latin1(`det:${i}`);
    assert.equal(a.shardOf(k), b.shardOf(k));
  }
});

test('the bucketed successor search places every key exactly as a plain binary search over the points', () => {
  // The reference: the lookup as first written (binary search per probe, modulo by division).
  const reference = (shards: number, key: Buffer): number => {
    const placed = Array.from({ length: shards * 16 }, (_, i) => {
      const id = Math.floor(i / 16);
      return { id, point: murmur3(Buffer.from(`shard-${id}-${i % 16}`), 0) };
    }).sort((a, b) => a.point - b.point || a.id - b.id);
    const points = placed.map((p) => p.point);
    const successor = (pos: number): number => {
      let lo = 0;
      let hi = points.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (points[mid] < pos) lo = mid + 1;
        else hi = mid;
      }
      return lo === points.length ? 0 : lo;
    };
    const h1 = murmur3(key, 0x9747b28c);
    const h2 = murmur3(key, 0x5bd1e995) | 1;
    let best = 0;
    let bestDistance = 0x1_0000_0000;
    for (let i = 0; i < 21; i++) {
      const probe = (h1 + Math.imul(i, h2)) >>> 0;
      const at = successor(probe);
      const distance = (points[at] - probe + 0x1_0000_0000) % 0x1_0000_0000;
      if (distance < bestDistance) {
        bestDistance = distance;
        best = at;
      }
    }
    return placed[best].id;
  };
  for (const shards of [2, 3, 4, 7, 16, 100]) {
    const ring = new ShardRing(shards);
    for (let i = 0; i < 2000; i++) {
      const key = latin1(`key:${i}:${(i * 2654435761) >>> 0}`);
      assert.equal(ring.shardOf(key), reference(shards, key), `${shards} shards, key ${key.toString()}`);
    }
  }
});
