import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addNode, assignSlots, formatMap, initialMap, MapError, normalize, parseMap, promote, removeNode, shardOf, slotOwners } from '../../src/cluster/map.js';

test('initialMap splits the slots as redis-cli --cluster create does and deals replicas round-robin', () => {
  const m = initialMap(['a', 'b', 'c'], ['d', 'e', 'f']);
  assert.equal(m.epoch, 1);
  assert.deepEqual(m.shards.map((s) => s.slots), [[[0, 5460]], [[5461, 10922]], [[10923, 16383]]]);
  assert.deepEqual(m.shards.map((s) => s.replicas), [['d'], ['e'], ['f']]);
  assert.deepEqual(initialMap(['x']).shards[0].slots, [[0, 16383]]);
  assert.throws(() => initialMap([]), MapError);
});

test('every change bumps the epoch by one', () => {
  const m = initialMap(['a', 'b']);
  const added = addNode(m, 'c', null);
  const rep = addNode(added, 'r', 'a');
  const moved = assignSlots(rep, 100, 8191, 'c');
  const promoted = promote(moved, 'r');
  assert.deepEqual([added, rep, moved, promoted].map((x) => x.epoch), [2, 3, 4, 5]);
  assert.deepEqual(shardOf(promoted, 'a'), { primary: 'r', replicas: ['a'], slots: [[0, 99]] });
  assert.deepEqual(shardOf(promoted, 'c')!.slots, [[100, 8191]]);
  assert.deepEqual(shardOf(promoted, 'b')!.slots, [[8192, 16383]]);
  const owners = slotOwners(promoted);
  assert.equal(owners[99], 'r');
  assert.equal(owners[100], 'c');
});

test('refusals: a node twice, removing a primary with slots, promoting a primary', () => {
  const m = initialMap(['a', 'b'], ['r']);
  assert.throws(() => addNode(m, 'a', null), /already in the cluster/);
  assert.throws(() => addNode(m, 'z', 'r'), /not a primary/);
  assert.throws(() => removeNode(m, 'a'), /still serves slots/);
  assert.throws(() => promote(m, 'a'), /already a primary/);
  assert.deepEqual(removeNode(m, 'r').shards[0].replicas, []);
  const empty = assignSlots(assignSlots(m, 0, 8191, 'b'), 0, 0, 'b');
  assert.throws(() => removeNode(empty, 'a'), /still has replicas/);
});

test('parseMap checks what it reads; formatMap round-trips', () => {
  const m = assignSlots(initialMap(['a', 'b']), 10, 20, 'b');
  assert.deepEqual(parseMap(formatMap(m)), { ...m, shards: m.shards.map((s) => ({ ...s, slots: normalize(s.slots) })) });
  assert.throws(() => parseMap('nope'), /not JSON/);
  assert.throws(() => parseMap('{"epoch":1,"shards":[{"primary":"a","replicas":[],"slots":[[0,5]]},{"primary":"b","replicas":[],"slots":[[5,9]]}]}'), /slot 5 is served by two shards/);
  assert.throws(() => parseMap('{"epoch":1,"shards":[{"primary":"a","replicas":["a"],"slots":[]}]}'), /appears twice/);
  assert.throws(() => parseMap('{"epoch":1,"shards":[{"primary":"a b","replicas":[],"slots":[]}]}'), /not a node name/);
  assert.throws(() => parseMap('{"epoch":1,"shards":[{"primary":"a","replicas":[],"slots":[[5,2]]}]}'), /not ranges/);
  assert.deepEqual(normalize([[5, 9], [0, 4], [20, 30], [25, 26]]), [[0, 9], [20, 30]]);
});
