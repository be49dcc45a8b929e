/** The block arena of the large-value cache (storage/block-arena.ts): bounded, reused, trimmed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BLOCK_BYTES, BlockArena, blocksFor } from '../../src/storage/block-arena.js';

test('blocks are handed out up to the bound, never twice, and reused once released', () => {
  const arena = new BlockArena(20 * BLOCK_BYTES + 100);
  assert.equal(arena.maxBlocks, 20);
  const a = arena.alloc(12)!;
  const b = arena.alloc(8)!;
  assert.equal(arena.heldBlocks, 20);
  assert.equal(arena.canAlloc(1), false);
  assert.equal(arena.alloc(1), null);
  const all = [...a, ...b];
  assert.ok(all.every((x) => x.length === BLOCK_BYTES));
  // No two blocks share memory: writing each one's index leaves every other intact.
  all.forEach((x, i) => x.fill(i));
  all.forEach((x, i) => assert.ok(x.every((byte) => byte === i), `block ${i}`));
  arena.release(a);
  assert.equal(arena.freeBlocks, 12);
  const c = arena.alloc(12)!;
  assert.deepEqual(new Set(c), new Set(a), 'the released blocks themselves');
  assert.equal(arena.heldBlocks, 20, 'released blocks are reused, not new ones allocated');
});

test('trim gives the memory back only when every block is free', () => {
  const arena = new BlockArena(32 * BLOCK_BYTES);
  const a = arena.alloc(3)!;
  assert.equal(arena.heldBlocks, 16, 'grown by a slab of 16 blocks');
  assert.equal(arena.trim(), false);
  arena.release(a);
  assert.equal(arena.trim(), true);
  assert.equal(arena.heldBlocks, 0);
  assert.equal(arena.alloc(1)![0].length, BLOCK_BYTES);
});

test('blocksFor rounds up to whole blocks', () => {
  assert.equal(blocksFor(1), 1);
  assert.equal(blocksFor(BLOCK_BYTES), 1);
  assert.equal(blocksFor(BLOCK_BYTES + 1), 2);
  assert.equal(blocksFor(1024 * 1024), 16);
});
