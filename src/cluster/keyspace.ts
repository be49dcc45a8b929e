/**
 * Keys of one hash slot, for CLUSTER COUNTKEYSINSLOT / GETKEYSINSLOT: plain keys and namespaces
 * (in field mode, fields: they are what routes there). Built on the storage's keyspace scan, so
 * it sees pending writes as every read does. The store keeps no slot index, so each call walks
 * every key: O(keys). A slot column with an index in storage would make it O(keys in slot).
 */
import { namespaceFields, SCAN_START, scanStep, type ScanPosition } from '../storage/keyspace.js';
import type { Store } from '../storage/store.js';
import { keySlot } from './slots.js';

const STEP = 1000;

/** Calls `visit` for every live routing key once; stops early when it returns false. */
function eachKey(store: Store, mode: 'namespace' | 'field', visit: (key: Buffer) => boolean): void {
  const seen = new Set<string>();
  const once = (key: Buffer): boolean => {
    const id = key.toString('latin1');
    if (seen.has(id)) return true;
    seen.add(id);
    return visit(key);
  };
  // Two passes, so each step's keys are of one kind: plain keys, then namespaces.
  for (const hashes of [false, true]) {
    let pos: ScanPosition | null = SCAN_START;
    while (pos !== null) {
      const { keys, next } = scanStep(store, pos, STEP, { strings: !hashes, hashes });
      for (const key of keys) {
        if (hashes && mode === 'field') {
          for (const { field } of namespaceFields(store, key, false)) if (!once(field)) return;
        } else if (!once(key)) {
          return;
        }
      }
      pos = next;
    }
  }
}

export function countKeysInSlot(store: Store, mode: 'namespace' | 'field', slot: number): number {
  let n = 0;
  eachKey(store, mode, (key) => {
    if (keySlot(key) === slot) n++;
    return true;
  });
  return n;
}

export function keysInSlot(store: Store, mode: 'namespace' | 'field', slot: number, max: number): Buffer[] {
  const out: Buffer[] = [];
  if (max <= 0) return out;
  eachKey(store, mode, (key) => {
    if (keySlot(key) === slot) out.push(key);
    return out.length < max;
  });
  return out;
}
