import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Overlay } from '../../src/storage/overlay.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const NOW = 1_700_000_000_000;

test('an empty overlay knows nothing', () => {
  const o = new Overlay();
  assert.equal(o.size, 0);
  assert.equal(o.lookup(null, b('k'), NOW), undefined);
  assert.equal(o.lookup(b('ns'), b('k'), NOW), undefined);
});

test('put then lookup returns the pending value and its seq', () => {
  const o = new Overlay();
  o.put(null, b('k'), b('v1'), null, 1);
  assert.equal(o.size, 1);
  const e = o.lookup(null, b('k'), NOW);
  assert.deepEqual(e, { key: b('k'), value: b('v1'), expiresAt: null, seq: 1, lent: true });
  // A newer write replaces the entry.
  o.put(null, b('k'), b('v2'), null, 2);
  assert.equal(o.size, 1);
  assert.deepEqual(o.lookup(null, b('k'), NOW), { key: b('k'), value: b('v2'), expiresAt: null, seq: 2, lent: true });
  // Other keys stay unknown.
  assert.equal(o.lookup(null, b('other'), NOW), undefined);
});

test('an entry is marked lent once a read got it, by lookup or by listing; a replaced one stays as it was', () => {
  const o = new Overlay();
  const first = o.put(null, b('k'), b('v1'), null, 1);
  const other = o.put(null, b('other'), b('w'), null, 2);
  const field = o.put(b('ns'), b('f'), b('x'), null, 3);
  assert.equal(first.lent, false);
  // A newer write replaces the entry before anyone read the first one: the first stays unlent.
  const second = o.put(null, b('k'), b('v2'), null, 4);
  assert.equal(o.lookup(null, b('k'), NOW), second);
  assert.equal(second.lent, true);
  assert.equal(first.lent, false);
  assert.equal(other.lent, false);
  // Listing a key space lends every entry it hands out.
  assert.deepEqual([...o.pending(null)].map((e) => e.key.toString()), ['k', 'other']);
  assert.equal(other.lent, true);
  assert.equal(field.lent, false);
  assert.equal(o.lookup(b('ns'), b('nope'), NOW), undefined);
  assert.equal(field.lent, false);
  assert.equal([...o.pending(b('ns'))].length, 1);
  assert.equal(field.lent, true);
  // An expired entry reads as a tombstone, and the entry itself is not handed out.
  const past = o.put(null, b('past'), b('v'), NOW - 1, 5);
  assert.equal(o.lookup(null, b('past'), NOW)?.value, null);
  assert.equal(past.lent, false);
});

test('a tombstone is an entry with a null value', () => {
  const o = new Overlay();
  o.put(null, b('k'), null, null, 7);
  assert.deepEqual(o.lookup(null, b('k'), NOW), { key: b('k'), value: null, expiresAt: null, seq: 7, lent: true });
});

test('an expired entry reads as absent (a tombstone), a live one as itself', () => {
  const o = new Overlay();
  o.put(null, b('past'), b('v'), NOW - 1, 1);
  o.put(null, b('edge'), b('v'), NOW, 2);
  o.put(null, b('future'), b('v'), NOW + 1, 3);
  assert.equal(o.lookup(null, b('past'), NOW)?.value, null);
  assert.equal(o.lookup(null, b('edge'), NOW)?.value, null);
  assert.deepEqual(o.lookup(null, b('future'), NOW), { key: b('future'), value: b('v'), expiresAt: NOW + 1, seq: 3, lent: true });
  // The expired entry is not undefined: it must hide the committed row.
  assert.notEqual(o.lookup(null, b('past'), NOW), undefined);
});

test('a barrier hides everything, earlier pending writes included, until released', () => {
  const o = new Overlay();
  o.put(null, b('before'), b('v'), null, 1);
  o.put(b('ns'), b('f'), b('v'), null, 2);
  o.putBarrier(3);
  assert.equal(o.size, 0);
  assert.equal(o.lookup(null, b('before'), NOW)?.value, null);
  assert.equal(o.lookup(null, b('never-written'), NOW)?.value, null);
  assert.equal(o.lookup(b('ns'), b('f'), NOW)?.value, null);
  // A write after the barrier is visible through it.
  o.put(null, b('after'), b('new'), null, 4);
  assert.deepEqual(o.lookup(null, b('after'), NOW)?.value, b('new'));
  assert.equal(o.lookup(null, b('before'), NOW)?.value, null);
  // Releasing the pre-barrier writes changes nothing.
  o.release(null, b('before'), 1);
  o.release(b('ns'), b('f'), 2);
  assert.equal(o.lookup(null, b('before'), NOW)?.value, null);
  // Releasing another seq does not lift the barrier.
  o.releaseBarrier(2);
  assert.equal(o.lookup(null, b('x'), NOW)?.value, null);
  o.releaseBarrier(3);
  assert.equal(o.lookup(null, b('x'), NOW), undefined);
  assert.equal(o.lookup(null, b('before'), NOW), undefined);
  assert.deepEqual(o.lookup(null, b('after'), NOW)?.value, b('new'));
});

test('a newer barrier replaces an older one; releasing the older leaves it in place', () => {
  const o = new Overlay();
  o.putBarrier(1);
  o.put(null, b('k'), b('v'), null, 2);
  o.putBarrier(3);
  assert.equal(o.lookup(null, b('k'), NOW)?.value, null);
  o.releaseBarrier(1);
  assert.equal(o.lookup(null, b('k'), NOW)?.value, null);
  o.releaseBarrier(3);
  assert.equal(o.lookup(null, b('k'), NOW), undefined);
});

test('release forgets the entry of its own seq only', () => {
  const o = new Overlay();
  o.put(null, b('k'), b('v1'), null, 1);
  o.put(null, b('k'), b('v2'), null, 2);
  o.release(null, b('k'), 1);
  assert.deepEqual(o.lookup(null, b('k'), NOW)?.value, b('v2'));
  assert.equal(o.size, 1);
  o.release(null, b('k'), 2);
  assert.equal(o.lookup(null, b('k'), NOW), undefined);
  assert.equal(o.size, 0);
  // Releasing something unknown is harmless.
  o.release(null, b('k'), 2);
  o.release(b('ns'), b('k'), 9);
  assert.equal(o.size, 0);
});

test('plain keys and namespaced fields are separate', () => {
  const o = new Overlay();
  o.put(null, b('x'), b('plain'), null, 1);
  o.put(b('x'), b('x'), b('nested'), null, 2);
  assert.deepEqual(o.lookup(null, b('x'), NOW)?.value, b('plain'));
  assert.deepEqual(o.lookup(b('x'), b('x'), NOW)?.value, b('nested'));
  assert.equal(o.size, 2);
  o.release(null, b('x'), 2); // the seq of the nested entry, on the plain side
  assert.deepEqual(o.lookup(null, b('x'), NOW)?.value, b('plain'));
  o.release(b('x'), b('x'), 2);
  assert.equal(o.lookup(b('x'), b('x'), NOW), undefined);
  assert.deepEqual(o.lookup(null, b('x'), NOW)?.value, b('plain'));
});

test('namespaced ids with colliding concatenations stay distinct', () => {
  const o = new Overlay();
  o.put(b('a'), b('bc'), b('1'), null, 1);
  o.put(b('ab'), b('c'), b('2'), null, 2);
  o.put(b(''), b('abc'), b('3'), null, 3);
  o.put(b('abc'), b(''), b('4'), null, 4);
  // A namespace that itself looks like a length prefix.
  o.put(b('1:a'), b('bc'), b('5'), null, 5);
  assert.equal(o.size, 5);
  assert.deepEqual(o.lookup(b('a'), b('bc'), NOW)?.value, b('1'));
  assert.deepEqual(o.lookup(b('ab'), b('c'), NOW)?.value, b('2'));
  assert.deepEqual(o.lookup(b(''), b('abc'), NOW)?.value, b('3'));
  assert.deepEqual(o.lookup(b('abc'), b(''), NOW)?.value, b('4'));
  assert.deepEqual(o.lookup(b('1:a'), b('bc'), NOW)?.value, b('5'));
  assert.equal(o.lookup(b('a'), b('b'), NOW), undefined);
  assert.equal(o.lookup(b('abcd'), b(''), NOW), undefined);
  o.release(b('ab'), b('c'), 1); // seq of ("a","bc"), wrong id
  assert.deepEqual(o.lookup(b('ab'), b('c'), NOW)?.value, b('2'));
  o.release(b('a'), b('bc'), 1);
  assert.equal(o.lookup(b('a'), b('bc'), NOW), undefined);
  assert.deepEqual(o.lookup(b('ab'), b('c'), NOW)?.value, b('2'));
});

test('binary keys with high bytes and NULs are exact', () => {
  const o = new Overlay();
  const k1 = Buffer.from([0x00, 0xff]);
  const k2 = Buffer.from([0x00, 0xfe]);
  const k3 = Buffer.from([0xc3, 0xbf]); // UTF-8 of ÿ; must not alias latin1 "\xff"
  o.put(null, k1, b('1'), null, 1);
  o.put(null, k3, b('3'), null, 2);
  assert.deepEqual(o.lookup(null, k1, NOW)?.value, b('1'));
  assert.equal(o.lookup(null, k2, NOW), undefined);
  assert.deepEqual(o.lookup(null, k3, NOW)?.value, b('3'));
  assert.equal(o.lookup(null, Buffer.from([0xff]), NOW), undefined);
});

test('a namespace barrier hides committed fields of that namespace only, until released', () => {
  const o = new Overlay();
  o.put(b('ns'), b('f'), b('before'), null, 1);
  o.putNamespaceBarrier(b('ns'), 2);
  assert.equal(o.lookup(b('ns'), b('f'), NOW)?.value, null, 'pending field before the delete is gone');
  assert.equal(o.lookup(b('ns'), b('committed'), NOW)?.value, null, 'committed fields are hidden');
  assert.equal(o.lookup(b('other'), b('f'), NOW), undefined, 'other namespaces are untouched');
  assert.equal(o.hidesCommitted(b('ns')), true);
  o.put(b('ns'), b('g'), b('after'), null, 3);
  assert.deepEqual([...o.pending(b('ns'))].map((e) => e.key.toString()), ['g']);
  o.releaseNamespaceBarrier(b('ns'), 1);
  assert.equal(o.hidesCommitted(b('ns')), true, 'an older seq does not release it');
  o.releaseNamespaceBarrier(b('ns'), 2);
  assert.equal(o.hidesCommitted(b('ns')), false);
  assert.equal(o.lookup(b('ns'), b('committed'), NOW), undefined);
  assert.equal(o.size, 1);
  o.release(b('ns'), b('g'), 3);
  assert.equal(o.size, 0);
  assert.equal(o.empty, true);
});
