/**
 * CLUSTER COUNTKEYSINSLOT / GETKEYSINSLOT from the slot indexes (schema migration 3): the keys of
 * one slot, committed or still pending, without expired or deleted ones; namespaces in namespace
 * mode, fields in field mode. Each write mode, since pending writes are merged from the overlays.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { countKeysInSlot, keysInSlot } from '../../src/cluster/keyspace.js';
import { keySlot } from '../../src/cluster/slots.js';
import { Keyspace } from '../../src/storage/keyspace.js';
import { Harness, WRITE_MODES } from '../helpers/harness.js';

const names = (bufs: Buffer[]): string[] => bufs.map((b) => b.toString()).sort();

for (const { name, opts } of WRITE_MODES) {
  describe(`keys in a slot (${name})`, () => {
    it('lists and counts plain keys and namespaces of the slot, not others, not deleted or expired ones', async () => {
      const h = Harness.open(opts);
      try {
        const slot = keySlot('tag');
        for (let i = 0; i < 30; i++) await h.run('SET', `{tag}:k${i}`, `v${i}`);
        await h.run('SET', 'other', 'x');
        await h.run('HSET', '{tag}:ns', 'f1', 'a', 'f2', 'b');
        await h.run('HSET', 'elsewhere', '{tag}:field', 'c');
        await h.run('DEL', '{tag}:k0');
        await h.run('SET', '{tag}:gone', 'x', 'PX', '10');
        await h.run('SET', '{tag}:both', 'x');
        await h.run('HSET', '{tag}:both', 'f', 'y');
        h.now += 20;
        const ks = new Keyspace(h.store);
        const all = keysInSlot(ks, 'namespace', slot, 1000, h.now);
        const expected = [...Array.from({ length: 29 }, (_, i) => `{tag}:k${i + 1}`), '{tag}:ns', '{tag}:both'].sort();
        assert.deepEqual(names(all), expected);
        assert.equal(countKeysInSlot(ks, 'namespace', slot, h.now), 31);
        assert.equal(keysInSlot(ks, 'namespace', slot, 5, h.now).length, 5);
        assert.deepEqual(keysInSlot(ks, 'namespace', keySlot('nothing-here'), 5, h.now), []);
        // Field mode: the fields route, so '{tag}:field' is in the slot and '{tag}:ns' is not.
        const fieldMode = names(keysInSlot(ks, 'field', slot, 1000, h.now));
        assert.ok(fieldMode.includes('{tag}:field'));
        assert.ok(!fieldMode.includes('{tag}:ns'));
        assert.equal(countKeysInSlot(ks, 'field', slot, h.now), 29 + 2);
        assert.deepEqual(h.failures, []);
      } finally {
        await h.close();
      }
    });
  });
}
