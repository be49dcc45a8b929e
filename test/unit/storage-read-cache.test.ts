import { test } from 'node:test';
import assert from 'node:assert/strict';
import { READ_CACHE_MIN_VALUE_BYTES, ReadCache } from '../../src/storage/read-cache.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const big = (fill: number, size = READ_CACHE_MIN_VALUE_BYTES): Buffer => Buffer.alloc(size, fill);

/** Bytes charged for an entry of a plain key with a value of `n` bytes: value, key and overhead. */
const charge = (n: number, key = 'k'): number => n + key.length + 512;

test('large values from 256 KiB up to a quarter of the budget are kept when read; a write of one only drops what was cached', () => {
  const c = new ReadCache(8 * READ_CACHE_MIN_VALUE_BYTES);
  c.fill(null, b('small'), Buffer.alloc(READ_CACHE_MIN_VALUE_BYTES - 1), null);
  c.fill(null, b('huge'), big(1, 2 * READ_CACHE_MIN_VALUE_BYTES + 1), null);
  c.fill(null, b('ok'), big(2), null);
  assert.equal(c.get(null, b('small'), 0), undefined);
  assert.equal(c.get(null, b('huge'), 0), undefined);
  assert.equal(c.get(null, b('ok'), 0)?.value[0], 2);
  assert.deepEqual(c.stats(), { hits: 1, misses: 2, bytes: charge(READ_CACHE_MIN_VALUE_BYTES, 'ok'), entries: 1 });
  assert.equal(c.smallStats().entries, 0);
  assert.equal(new ReadCache(0).wants(READ_CACHE_MIN_VALUE_BYTES), false);
  // The large class is filled by reads: a committed write of a large value is not kept, and the
  // value cached before it is gone.
  c.put(null, b('ok'), big(3), null);
  c.put(null, b('new'), big(4), null);
  assert.equal(c.get(null, b('ok'), 0), undefined);
  assert.equal(c.get(null, b('new'), 0), undefined);
  assert.equal(c.stats().entries, 0);
});

test('small values: their own budget, counted apart from large ones; fill() counts a miss', () => {
  const c = new ReadCache(8 * READ_CACHE_MIN_VALUE_BYTES, 64 * 1024);
  c.fill(null, b('s'), Buffer.from('small value'), null);
  c.fill(null, b('l'), big(7), null);
  assert.equal(c.get(null, b('s'), 0)?.value.toString(), 'small value');
  assert.equal(c.get(null, b('l'), 0)?.value[0], 7);
  assert.deepEqual(c.smallStats(), { hits: 1, misses: 1, bytes: charge(11, 's'), entries: 1 });
  assert.deepEqual(c.stats(), { hits: 1, misses: 1, bytes: charge(READ_CACHE_MIN_VALUE_BYTES, 'l'), entries: 1 });
  // More than a quarter of the small budget is not kept.
  assert.equal(c.wants(16 * 1024), false);
  assert.equal(c.wants(8 * 1024), true);
  // A key that changes size class lives in one class only.
  c.fill(null, b('s'), big(3), null);
  assert.equal(c.smallStats().entries, 0);
  assert.equal(c.get(null, b('s'), 0)?.value[0], 3);
});

test('a small value sliced from a larger buffer is copied, so it does not pin the buffer', () => {
  const c = new ReadCache(0, 1024 * 1024);
  const chunk = Buffer.alloc(64 * 1024, 1);
  const slice = chunk.subarray(100, 100 + 5000);
  c.put(null, b('k'), slice, null);
  const got = c.get(null, b('k'), 0)!.value;
  assert.equal(got.equals(slice), true);
  assert.equal(got.buffer.byteLength < 64 * 1024, true);
});

test('small values: the least recently used leave first', () => {
  const c = new ReadCache(0, 4 * charge(1000));
  for (const k of ['a', 'b', 'c', 'd']) c.put(null, b(k), Buffer.alloc(1000, k), null);
  assert.ok(c.get(null, b('a'), 0));
  c.put(null, b('e'), Buffer.alloc(1000, 'e'), null); // a was read: b leaves
  assert.equal(c.get(null, b('b'), 0), undefined);
  assert.deepEqual(['a', 'c', 'd', 'e'].map((k) => c.get(null, b(k), 0)?.value.toString('latin1', 0, 1)), ['a', 'c', 'd', 'e']);
  assert.equal(c.smallStats().bytes, 4 * charge(1000));
});

test('the least recently used entries leave first when the budget is exceeded', () => {
  const c = new ReadCache(4 * charge(READ_CACHE_MIN_VALUE_BYTES));
  for (const [i, k] of ['a', 'b', 'c', 'd'].entries()) c.fill(null, b(k), big(i + 1), null);
  assert.ok(c.get(null, b('a'), 0)); // a is now the most recent
  c.fill(null, b('e'), big(5), null); // evicts b
  assert.equal(c.get(null, b('b'), 0), undefined);
  assert.deepEqual(['a', 'c', 'd', 'e'].map((k) => c.get(null, b(k), 0)?.value[0]), [1, 3, 4, 5]);
  assert.equal(c.stats().bytes, 4 * charge(READ_CACHE_MIN_VALUE_BYTES));
  // Replacing an entry does not count its bytes twice.
  c.fill(null, b('a'), big(9), null);
  assert.equal(c.stats().bytes, 4 * charge(READ_CACHE_MIN_VALUE_BYTES));
  assert.equal(c.get(null, b('a'), 0)?.value[0], 9);
});

test('an entry past its expiry misses and is dropped', () => {
  const c = new ReadCache(4 * READ_CACHE_MIN_VALUE_BYTES);
  c.fill(null, b('k'), big(1), 1000);
  assert.ok(c.get(null, b('k'), 999));
  assert.equal(c.get(null, b('k'), 1000), undefined);
  assert.equal(c.stats().entries, 0);
});

test('invalidation: a key, a whole namespace (and nothing else), everything; each bumps the epoch', () => {
  const c = new ReadCache(16 * READ_CACHE_MIN_VALUE_BYTES);
  c.fill(null, b('k'), big(1), null);
  c.fill(b('ns'), b('f1'), big(2), null);
  c.fill(b('ns'), b('f2'), big(3), null);
  c.fill(b('ns2'), b('f1'), big(4), null);
  // "n" + length keeps namespace "ns" + field "2f1" apart from namespace "ns2" + field "f1".
  c.fill(b('ns'), b('2f1'), big(5), null);
  c.fill(null, b('ns'), big(6), null);
  const e0 = c.epoch;
  c.invalidate(null, b('k'));
  assert.equal(c.get(null, b('k'), 0), undefined);
  c.invalidateNamespace(b('ns'));
  assert.equal(c.get(b('ns'), b('f1'), 0), undefined);
  assert.equal(c.get(b('ns'), b('f2'), 0), undefined);
  assert.equal(c.get(b('ns'), b('2f1'), 0), undefined);
  assert.equal(c.get(b('ns2'), b('f1'), 0)?.value[0], 4);
  assert.equal(c.get(null, b('ns'), 0)?.value[0], 6, 'a plain key named like the namespace stays');
  c.clear();
  assert.deepEqual(c.stats().entries, 0);
  assert.equal(c.epoch, e0 + 3);
});

test('a namespace delete does not walk the cache: its entries go stale at once, leave when read, and fields put again after it are served', () => {
  const c = new ReadCache(0, 64 << 20);
  for (let i = 0; i < 20_000; i++) c.put(b('big'), b(`f${i}`), b(`v${i}`), null);
  c.put(b('other'), b('f1'), b('kept'), null);
  c.invalidateNamespace(b('big'));
  // Still charged (stale), never served.
  assert.equal(c.smallStats().entries, 20_001);
  assert.equal(c.get(b('big'), b('f7'), 0), undefined);
  assert.equal(c.smallStats().entries, 20_000, 'the stale entry read goes');
  assert.equal(c.get(b('other'), b('f1'), 0)?.value.toString(), 'kept');
  // Written (and put) after the delete: current, whether its slot held a stale entry or not.
  c.put(b('big'), b('f8'), b('new'), null);
  c.put(b('big'), b('g1'), b('new too'), null);
  assert.equal(c.get(b('big'), b('f8'), 0)?.value.toString(), 'new');
  assert.equal(c.get(b('big'), b('g1'), 0)?.value.toString(), 'new too');
  assert.equal(c.get(b('big'), b('f9'), 0), undefined);
  // A second delete takes the fields put since the first.
  c.invalidateNamespace(b('big'));
  assert.equal(c.get(b('big'), b('f8'), 0), undefined);
  assert.equal(c.get(b('other'), b('f1'), 0)?.value.toString(), 'kept');
});

test('past 4096 namespaces deleted, the cache starts empty rather than remember more: nothing stale is served', () => {
  const c = new ReadCache(0, 64 << 20);
  c.put(b('kept'), b('f'), b('v'), null);
  for (let i = 0; i < 5000; i++) {
    c.put(b(`ns${i}`), b('f'), b(`v${i}`), null);
    c.invalidateNamespace(b(`ns${i}`));
    assert.equal(c.get(b(`ns${i}`), b('f'), 0), undefined, `ns${i}`);
  }
  // Forgotten at the clear (a miss, read again from SQLite), not served stale.
  assert.equal(c.get(b('kept'), b('f'), 0), undefined);
  for (let i = 0; i < 5000; i++) assert.equal(c.get(b(`ns${i}`), b('f'), 0), undefined);
});

test('keys are told apart by their bytes, whatever their hash: plain keys, fields, namespaces', () => {
  const c = new ReadCache(0, 1 << 20);
  c.put(null, b('ab'), b('plain'), null);
  c.put(b('a'), b('b'), b('field'), null);
  c.put(b('ab'), b(''), b('empty field'), null);
  assert.equal(c.get(null, b('ab'), 0)?.value.toString(), 'plain');
  assert.equal(c.get(b('a'), b('b'), 0)?.value.toString(), 'field');
  assert.equal(c.get(b('ab'), b(''), 0)?.value.toString(), 'empty field');
  assert.equal(c.get(null, b('ba'), 0), undefined);
  assert.equal(c.get(b('b'), b('a'), 0), undefined);
  // Many keys: every one reads back its own value.
  for (let i = 0; i < 300; i++) c.put(null, b(`key:${i}`), b(`v${i}`), null);
  for (let i = 0; i < 300; i++) assert.equal(c.get(null, b(`key:${i}`), 0)?.value.toString(), `v${i}`);
});

test('a hit gives its entry a second chance: eviction passes over entries used since they last reached the old end', () => {
  const c = new ReadCache(0, 4 * charge(1000));
  for (const k of ['a', 'b', 'c', 'd']) c.put(null, b(k), Buffer.alloc(1000, k), null);
  c.put(null, b('e'), Buffer.alloc(1000, 'e'), null); // all new, all passed over once: a, the oldest, leaves
  assert.equal(c.get(null, b('a'), 0), undefined);
  assert.ok(c.get(null, b('c'), 0));
  c.put(null, b('f'), Buffer.alloc(1000, 'f'), null); // b leaves
  c.put(null, b('g'), Buffer.alloc(1000, 'g'), null); // c was read: d leaves, not c
  assert.deepEqual(['b', 'd'].map((k) => c.get(null, b(k), 0)), [undefined, undefined]);
  assert.deepEqual(['c', 'e', 'f', 'g'].map((k) => c.get(null, b(k), 0)?.value.toString('latin1', 0, 1)), ['c', 'e', 'f', 'g']);
  assert.equal(c.smallStats().entries, 4);
  assert.equal(c.smallStats().bytes, 4 * charge(1000));
});

test('when every entry has been read, a write still evicts (after giving each a second chance) and stays within budget', () => {
  const n = 2000;
  const c = new ReadCache(0, n * charge(10, 'k0000'));
  const key = (i: number): Buffer => b(`k${String(i).padStart(4, '0')}`);
  for (let i = 0; i < n; i++) c.put(null, key(i), Buffer.alloc(10, 1), null);
  for (let i = 0; i < n; i++) assert.ok(c.get(null, key(i), 0));
  c.put(null, b('knew0'), Buffer.alloc(10, 2), null);
  assert.equal(c.smallStats().entries, n);
  assert.ok(c.smallStats().bytes <= n * charge(10, 'k0000'));
  assert.equal(c.get(null, b('knew0'), 0)?.value[0], 2);
  // Every entry but one is still there, each with its own value.
  let left = 0;
  for (let i = 0; i < n; i++) if (c.get(null, key(i), 0)?.value[0] === 1) left++;
  assert.equal(left, n - 1);
});

test('two keys with the same hash share a slot: the newer takes it, the older misses, bytes stay exact', () => {
  const c = new ReadCache(0, 1 << 30);
  const seen: Buffer[] = [];
  let newer: Buffer | null = null;
  // 30-bit hashes: a collision is expected after ~2^15 keys; found by watching the entry count.
  for (let i = 0; i < 400_000 && newer === null; i++) {
    const k = b(`key:${i}`);
    const before = c.smallStats().entries;
    c.put(null, k, b(`v${i}`), null);
    if (c.smallStats().entries === before) newer = k;
    else seen.push(k);
  }
  assert.ok(newer !== null, 'a collision among 400,000 keys');
  const older = seen.filter((k) => c.get(null, k, 0) === undefined);
  assert.equal(older.length, 1, 'exactly one earlier key lost its slot');
  assert.equal(c.get(null, newer, 0)?.value.toString(), `v${newer.toString().slice(4)}`);
  // Recount from what is left: every remaining key with its own value.
  let bytes = 0;
  for (const k of [...seen.filter((x) => x !== older[0]), newer]) {
    const v = c.get(null, k, 0);
    assert.equal(v?.value.toString(), `v${k.toString().slice(4)}`);
    bytes += v!.value.length + k.length + 512;
  }
  assert.equal(c.smallStats().bytes, bytes);
});

test('a full cache admits a small value read from SQLite on its second miss; one with room admits it at once; writes always fill', () => {
  const c = new ReadCache(0, 4 * charge(1000));
  // Room: the first miss fills.
  for (const k of ['a', 'b', 'c', 'd']) c.fill(null, b(k), Buffer.alloc(1000, k), null);
  assert.equal(c.smallStats().entries, 4);
  assert.equal(c.get(null, b('a'), 0)?.value[0], 'a'.charCodeAt(0));
  // Full: e's first miss is counted and not kept; its second is kept (and evicts the oldest unread).
  c.fill(null, b('e'), Buffer.alloc(1000, 'e'), null);
  assert.equal(c.get(null, b('e'), 0), undefined);
  assert.deepEqual(['a', 'b', 'c', 'd'].map((k) => c.get(null, b(k), 0) !== undefined), [true, true, true, true]);
  c.fill(null, b('e'), Buffer.alloc(1000, 'e'), null);
  assert.equal(c.get(null, b('e'), 0)?.value[0], 'e'.charCodeAt(0));
  assert.equal(c.smallStats().misses, 6);
  assert.equal(c.smallStats().entries, 4);
  // A committed write (put) is kept at once, full or not.
  c.put(null, b('f'), Buffer.alloc(1000, 'f'), null);
  assert.equal(c.get(null, b('f'), 0)?.value[0], 'f'.charCodeAt(0));
  // Large values are admitted on their first miss, full or not.
  const l = new ReadCache(4 * charge(READ_CACHE_MIN_VALUE_BYTES));
  for (const [i, k] of ['v', 'w', 'x', 'y', 'z'].entries()) l.fill(null, b(k), big(i + 1), null);
  assert.equal(l.get(null, b('z'), 0)?.value[0], 5);
  assert.equal(l.stats().entries, 4);
});

/** Distinct bytes, so a block handed to the wrong value or reused too early shows. */
const patterned = (seed: number, size: number): Buffer => {
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + seed * 7 + (i >> 16)) & 0xff;
  return out;
};

test('a large value lives in the blocks of the arena: a copy of what was read, and get() gives a copy of it', () => {
  const c = new ReadCache(16 * READ_CACHE_MIN_VALUE_BYTES);
  const size = 300_000; // not a multiple of the block size: the last block is partly used
  const read = patterned(1, size);
  const original = Buffer.from(read);
  c.fill(null, b('k'), read, null);
  read.fill(0); // the Buffer SQLite returned may be reused or freed: the cache does not depend on it
  const got = c.get(null, b('k'), 0)!.value;
  assert.equal(got.equals(original), true);
  got.fill(1); // a reader's copy is its own
  assert.equal(c.get(null, b('k'), 0)!.value.equals(original), true);
  // Charged by whole blocks: 300,000 bytes take five of 64 KiB.
  assert.equal(c.stats().bytes, 5 * 65_536 + 1 + 512);
});

test('pin() lends the blocks: the pieces are the value; an evicted pinned entry keeps its blocks until released', () => {
  // Room for exactly four values of 256 KiB: 16 blocks, and the keys and overheads beside them.
  const c = new ReadCache(16 * 65_536 + 4 * 1024);
  const values = [0, 1, 2, 3].map((i) => patterned(i, READ_CACHE_MIN_VALUE_BYTES));
  values.forEach((v, i) => c.fill(null, b(`k${i}`), v, null));
  const pinned = c.pin(null, b('k0'), 0)!;
  assert.equal(pinned.length, READ_CACHE_MIN_VALUE_BYTES);
  assert.equal(Buffer.concat(pinned.pieces).equals(values[0]), true);
  assert.equal(c.pin(null, b('nope'), 0), undefined);
  // Four more values push every old entry out; k0's blocks are not free, so one of them cannot
  // be cached, and k0's bytes stay as they were.
  const more = [4, 5, 6, 7].map((i) => patterned(i, READ_CACHE_MIN_VALUE_BYTES));
  more.forEach((v, i) => c.fill(null, b(`k${i + 4}`), v, null));
  assert.equal(c.get(null, b('k0'), 0), undefined);
  assert.equal(Buffer.concat(pinned.pieces).equals(values[0]), true);
  assert.equal(c.stats().entries, 3);
  assert.equal(c.get(null, b('k7'), 0)!.value.equals(more[3]), true);
  // Released (twice: harmless), its blocks are used again.
  pinned.release();
  pinned.release();
  c.fill(null, b('k8'), patterned(8, READ_CACHE_MIN_VALUE_BYTES), null);
  assert.equal(c.stats().entries, 4);
  assert.equal(c.get(null, b('k8'), 0)!.value.equals(patterned(8, READ_CACHE_MIN_VALUE_BYTES)), true);
  for (const [i, v] of more.entries()) if (i > 0) assert.equal(c.get(null, b(`k${i + 4}`), 0)!.value.equals(v), true, `k${i + 4}`);
});

test('a pinned entry that is invalidated, replaced or cleared keeps its bytes until released', () => {
  const c = new ReadCache(16 * 65_536);
  const v1 = patterned(1, READ_CACHE_MIN_VALUE_BYTES);
  c.fill(null, b('k'), v1, null);
  const a = c.pin(null, b('k'), 0)!;
  c.fill(null, b('k'), patterned(2, READ_CACHE_MIN_VALUE_BYTES), null); // replaced
  const b2 = c.pin(null, b('k'), 0)!;
  c.invalidate(null, b('k'));
  c.fill(null, b('x'), patterned(3, READ_CACHE_MIN_VALUE_BYTES), null);
  const x = c.pin(null, b('x'), 0)!;
  c.clear();
  // Two more fills take the free blocks; none of the pinned ones.
  c.fill(null, b('y'), patterned(4, READ_CACHE_MIN_VALUE_BYTES), null);
  assert.equal(Buffer.concat(a.pieces).equals(v1), true);
  assert.equal(Buffer.concat(b2.pieces).equals(patterned(2, READ_CACHE_MIN_VALUE_BYTES)), true);
  assert.equal(Buffer.concat(x.pieces).equals(patterned(3, READ_CACHE_MIN_VALUE_BYTES)), true);
  for (const p of [a, b2, x]) p.release();
  assert.equal(c.get(null, b('y'), 0)!.value.equals(patterned(4, READ_CACHE_MIN_VALUE_BYTES)), true);
});

test('pin() counts a hit and misses an expired entry or one of a deleted namespace', () => {
  const c = new ReadCache(16 * 65_536);
  c.fill(null, b('t'), patterned(1, READ_CACHE_MIN_VALUE_BYTES), 1000);
  c.fill(b('ns'), b('f'), patterned(2, READ_CACHE_MIN_VALUE_BYTES), null);
  const p = c.pin(null, b('t'), 999)!;
  p.release();
  assert.equal(c.pin(null, b('t'), 1000), undefined);
  c.invalidateNamespace(b('ns'));
  assert.equal(c.pin(b('ns'), b('f'), 0), undefined);
  assert.deepEqual(c.stats(), { hits: 1, misses: 2, bytes: 0, entries: 0 });
  assert.equal(c.holdsLarge, false);
});
