/**
 * Hash slots: 16384 of them, CRC16 of the key (or of its {hash tag}) as Redis Cluster and every
 * cluster client compute it, and helpers to turn slot sets into ranges and back.
 */
import calculate from 'cluster-key-slot';

export const SLOT_COUNT = 16384;

export function keySlot(key: Buffer | string): number {
  return calculate(key);
}

/** Inclusive [start, end] ranges of the set slots, ascending. */
export type SlotRange = readonly [number, number];

export function slotsToRanges(slots: Uint8Array): SlotRange[] {
  const out: SlotRange[] = [];
  let start = -1;
  for (let s = 0; s <= SLOT_COUNT; s++) {
    const on = s < SLOT_COUNT && slots[s] === 1;
    if (on && start < 0) start = s;
    else if (!on && start >= 0) {
      out.push([start, s - 1]);
      start = -1;
    }
  }
  return out;
}

export function rangesToSlots(ranges: readonly SlotRange[]): Uint8Array {
  const slots = new Uint8Array(SLOT_COUNT);
  for (const [a, b] of ranges) for (let s = Math.max(0, a); s <= Math.min(SLOT_COUNT - 1, b); s++) slots[s] = 1;
  return slots;
}

/** The slots a node's config assigns it: `slot_ranges` and `slots` together. */
export function configSlots(ranges: readonly { start: number; end: number }[], single: readonly number[]): Uint8Array {
  const slots = rangesToSlots(ranges.map((r) => [r.start, r.end] as const));
  for (const s of single) slots[s] = 1;
  return slots;
}

/** "0-5460 9000" as CLUSTER NODES writes slot ranges. */
export function formatRanges(ranges: readonly SlotRange[]): string {
  return ranges.map(([a, b]) => (a === b ? String(a) : `${a}-${b}`)).join(' ');
}

export function countSlots(ranges: readonly SlotRange[]): number {
  let n = 0;
  for (const [a, b] of ranges) n += b - a + 1;
  return n;
}
