/**
 * Keys of one hash slot, for CLUSTER COUNTKEYSINSLOT / GETKEYSINSLOT: plain keys and namespaces
 * (in field mode, fields: they are what routes there). Built on the storage's keyspace scan, so
 * it sees pending writes as every read does. The store keeps no slot index, so each call walks
 * every key: O(keys). A slot column with an index in storage would make it O(keys in slot).
 */
import { SCAN_START, type Keyspace, type ScanPosition } from '../storage/keyspace.js';
import { keySlot } from './slots.js';

const STEP = 1000;

/** Calls `visit` for every live routing key once; stops early when it returns false. */
function eachKey(ks: Keyspace, mode: 'namespace' | 'field', now: number, visit: (key: Buffer) => boolean): void {
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
      const { keys, next } = ks.scanStep(pos, STEP, { strings: !hashes, hashes }, now);
      for (const key of keys) {
        if (hashes && mode === 'field') {
          for (const { field } of ks.namespaceFields(key, false, now)) if (!once(field)) return;
        } else if (!once(key)) {
          return;
        }
      }
      pos = next;
    }
  }
}

export function countKeysInSlot(ks: Keyspace, mode: 'namespace' | 'field', slot: number, now: number): number {
  let n = 0;
  eachKey(ks, mode, now, (key) => {
    if (keySlot(key) === slot) n++;
    return true;
  });
  return n;
}

export function keysInSlot(ks: Keyspace, mode: 'namespace' | 'field', slot: number, max: number, now: number): Buffer[] {
  const out: Buffer[] = [];
  if (max <= 0) return out;
  eachKey(ks, mode, now, (key) => {
    if (keySlot(key) === slot) out.push(key);
    return out.length < max;
  });
  return out;
}
