import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CursorRegistry } from '../../src/commands/cursors.js';

interface Pos {
  after: Buffer | null;
  n: number;
}
const START: Pos = { after: null, n: 0 };

test('cursors: random 63-bit decimals, never sequential, "0" for a finished scan', () => {
  const reg = new CursorRegistry<Pos>();
  assert.equal(reg.save(null), '0');
  const ids = Array.from({ length: 200 }, (_, i) => reg.save({ after: Buffer.from(`k${i}`), n: i }));
  for (const id of ids) {
    assert.match(id, /^[1-9][0-9]*$/);
    const n = BigInt(id);
    assert.ok(n > 0n && n < 1n << 63n, id);
  }
  assert.equal(new Set(ids).size, ids.length);
  // A counter would hand out neighbours; random ids almost never do (and never all of them).
  const neighbours = ids.slice(1).filter((id, i) => BigInt(id) - BigInt(ids[i]) === 1n).length;
  assert.ok(neighbours < 2, `${neighbours} sequential ids`);
  // Long ids: at least 2^40 for all but a vanishing fraction.
  assert.ok(ids.filter((id) => BigInt(id) < 1n << 40n).length < 2);
  assert.equal(reg.load(ids[5], START)?.n, 5);
  assert.equal(reg.load(ids[5], START)?.n, 5, 'a cursor can be retried');
  assert.equal(reg.load('0', START), START);
  assert.equal(reg.load((BigInt(ids[5]) + 1n).toString(), START), undefined);
});

test('cursors: bounded in bytes of key names; the oldest are forgotten first, the newest always kept', () => {
  const reg = new CursorRegistry<Pos>(10_000, 10 * 1024 * 1024);
  const big = (i: number): Pos => ({ after: Buffer.alloc(4 * 1024 * 1024, i), n: i });
  const ids = Array.from({ length: 5 }, (_, i) => reg.save(big(i)));
  assert.ok(reg.size.bytes <= 10 * 1024 * 1024, `${reg.size.bytes} bytes held`);
  assert.equal(reg.size.cursors, 2);
  assert.equal(reg.load(ids[0], START), undefined);
  assert.equal(reg.load(ids[4], START)?.n, 4);
  assert.equal(reg.load(ids[3], START)?.n, 3);
  const huge = reg.save({ after: Buffer.alloc(12 * 1024 * 1024), n: 9 });
  assert.equal(reg.load(huge, START)?.n, 9, 'one position over the budget is still kept');
  assert.equal(reg.size.cursors, 1);
});

test('cursors: bounded in count', () => {
  const reg = new CursorRegistry<Pos>(100);
  const ids = Array.from({ length: 150 }, (_, i) => reg.save({ after: Buffer.from('k'), n: i }));
  assert.equal(reg.size.cursors, 100);
  assert.equal(reg.load(ids[49], START), undefined);
  assert.equal(reg.load(ids[50], START)?.n, 50);
});

test('cursors: a name sliced from a larger buffer is copied, not kept with its buffer', () => {
  const reg = new CursorRegistry<Pos>();
  const chunk = Buffer.alloc(1024 * 1024);
  const id = reg.save({ after: chunk.subarray(10, 20), n: 1 });
  const pos = reg.load(id, START)!;
  assert.equal(pos.after!.length, 10);
  assert.ok(pos.after!.buffer.byteLength < 64 * 1024, `holds a ${pos.after!.buffer.byteLength}-byte buffer`);
});
