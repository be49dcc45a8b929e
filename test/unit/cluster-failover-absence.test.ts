import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrimaryAbsence } from '../../src/cluster/failover.js';

test('a primary that held a lease and lost it is gone at once', () => {
  const a = new PrimaryAbsence(5000);
  assert.equal(a.gone('p1', true, 1000), false);
  assert.equal(a.gone('p1', false, 1001), true);
});

test('a primary seen alive in any view (not only as this replica\'s primary) is gone at once when its lease is', () => {
  const a = new PrimaryAbsence(5000);
  a.see(['p1', 'r1']);
  assert.equal(a.gone('p1', false, 1000), true);
});

test('a primary never seen alive (still starting) is not replaced within one lease TTL of its first absence', () => {
  const a = new PrimaryAbsence(5000);
  assert.equal(a.gone('p1', false, 10_000), false);
  assert.equal(a.gone('p1', false, 12_000), false);
  assert.equal(a.gone('p1', false, 14_999), false);
  // It never came: as long as etcd would have waited for a dead lease holder, then it is gone.
  assert.equal(a.gone('p1', false, 15_000), true);
});

test('a starting primary that registers within the TTL is kept, and its later loss counts at once', () => {
  const a = new PrimaryAbsence(5000);
  assert.equal(a.gone('p1', false, 10_000), false);
  a.see(['p1']);
  assert.equal(a.gone('p1', true, 10_300), false);
  assert.equal(a.gone('p1', false, 20_000), true);
});

test('each primary\'s absence is timed on its own', () => {
  const a = new PrimaryAbsence(1000);
  assert.equal(a.gone('p1', false, 0), false);
  assert.equal(a.gone('p2', false, 900), false);
  assert.equal(a.gone('p1', false, 1000), true);
  assert.equal(a.gone('p2', false, 1000), false);
  assert.equal(a.gone('p2', false, 1900), true);
});
