/**
 * Keys of one hash slot, for CLUSTER COUNTKEYSINSLOT / GETKEYSINSLOT and resharding: plain keys
 * and namespaces (in field mode, fields: they are what routes there). The shards index every row
 * by slot (schema migration 4), so a call costs O(keys in the slot), not a walk of every key; it
 * sees pending writes as every read does.
 */
import type { Keyspace } from '../storage/keyspace.js';

function names(ks: Keyspace, mode: 'namespace' | 'field', slot: number, max: number, now: number): Buffer[] {
  const plain = ks.slotNames('plain', slot, max, now);
  if (max >= 0 && plain.length >= max) return plain;
  const seen = new Set(plain.map((k) => k.toString('latin1')));
  const rest = ks.slotNames(mode === 'field' ? 'fields' : 'namespaces', slot, max < 0 ? -1 : max - plain.length + seen.size, now);
  // A name that is both a blob and a namespace is one key (TYPE says string), listed once.
  const out = plain;
  for (const k of rest) {
    if (max >= 0 && out.length >= max) break;
    if (!seen.has(k.toString('latin1'))) out.push(k);
  }
  return out;
}

export function countKeysInSlot(ks: Keyspace, mode: 'namespace' | 'field', slot: number, now: number): number {
  return names(ks, mode, slot, -1, now).length;
}

export function keysInSlot(ks: Keyspace, mode: 'namespace' | 'field', slot: number, max: number, now: number): Buffer[] {
  if (max <= 0) return [];
  return names(ks, mode, slot, max, now);
}
