import { test } from 'node:test';
import assert from 'node:assert/strict';
import { READ_CACHE_MIN_VALUE_BYTES, ReadCache } from '../../src/storage/read-cache.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const big = (fill: number, size = READ_CACHE_MIN_VALUE_BYTES): Buffer => Buffer.alloc(size, fill);

test('only values from 64 KiB up to a quarter of the budget are kept', () => {
  const c = new ReadCache(8 * READ_CACHE_MIN_VALUE_BYTES);
  c.put(null, b('small'), Buffer.alloc(READ_CACHE_MIN_VALUE_BYTES - 1), null);
  c.put(null, b('huge'), big(1, 2 * READ_CACHE_MIN_VALUE_BYTES + 1), null);
  c.put(null, b('ok'), big(2), null);
  assert.equal(c.get(null, b('small'), 0), undefined);
  assert.equal(c.get(null, b('huge'), 0), undefined);
  assert.equal(c.get(null, b('ok'), 0)?.value[0], 2);
  assert.deepEqual(c.stats(), { hits: 1, misses: 2, bytes: READ_CACHE_MIN_VALUE_BYTES, entries: 1 });
  assert.equal(new ReadCache(0).wants(READ_CACHE_MIN_VALUE_BYTES), false);
});

test('the least recently used entries leave first when the budget is exceeded', () => {
  const c = new ReadCache(4 * READ_CACHE_MIN_VALUE_BYTES);
  for (const [i, k] of ['a', 'b', 'c', 'd'].entries()) c.put(null, b(k), big(i + 1), null);
  assert.ok(c.get(null, b('a'), 0)); // a is now the most recent
  c.put(null, b('e'), big(5), null); // evicts b
  assert.equal(c.get(null, b('b'), 0), undefined);
  assert.deepEqual(['a', 'c', 'd', 'e'].map((k) => c.get(null, b(k), 0)?.value[0]), [1, 3, 4, 5]);
  assert.equal(c.stats().bytes, 4 * READ_CACHE_MIN_VALUE_BYTES);
  // Replacing an entry does not count its bytes twice.
  c.put(null, b('a'), big(9), null);
  assert.equal(c.stats().bytes, 4 * READ_CACHE_MIN_VALUE_BYTES);
  assert.equal(c.get(null, b('a'), 0)?.value[0], 9);
});

test('an entry past its expiry misses and is dropped', () => {
  const c = new ReadCache(4 * READ_CACHE_MIN_VALUE_BYTES);
  c.put(null, b('k'), big(1), 1000);
  assert.ok(c.get(null, b('k'), 999));
  assert.equal(c.get(null, b('k'), 1000), undefined);
  assert.equal(c.stats().entries, 0);
});

test('invalidation: a key, a whole namespace (and nothing else), everything; each bumps the epoch', () => {
  const c = new ReadCache(16 * READ_CACHE_MIN_VALUE_BYTES);
  c.put(null, b('k'), big(1), null);
  c.put(b('ns'), b('f1'), big(2), null);
  c.put(b('ns'), b('f2'), big(3), null);
  c.put(b('ns2'), b('f1'), big(4), null);
  // "n" + length keeps namespace "ns" + field "2f1" apart from namespace "ns2" + field "f1".
  c.put(b('ns'), b('2f1'), big(5), null);
  c.put(null, b('ns'), big(6), null);
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
