/** Pure pieces of the dashboard: latency percentiles from histogram buckets, value sniffing, key rendering. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readable, sniff } from '../../src/dashboard/api.js';
import { percentile } from '../../src/dashboard/sampler.js';

test('percentile: the upper bound (ms) of the bucket the rank falls in, over the interval only', () => {
  const before = new Map([[0.001, 10], [0.01, 10], [Infinity, 10]]);
  // Since `before`: 90 commands ≤ 1 ms, 9 more ≤ 10 ms, 1 slower.
  const after = new Map([[0.001, 100], [0.01, 109], [Infinity, 110]]);
  assert.equal(percentile(before, after, 0.5), 1);
  assert.equal(percentile(before, after, 0.95), 10);
  // The slowest bucket has no upper bound: its lower bound is what can be said.
  assert.equal(percentile(before, after, 1), 10);
  assert.equal(percentile(after, after, 0.5), null);
  assert.equal(percentile(new Map(), new Map(), 0.5), null);
});

test('sniff: raster images by signature, JSON, UTF-8 text, anything else binary', () => {
  assert.deepEqual(sniff(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0])), { type: 'image/png', kind: 'image' });
  assert.deepEqual(sniff(Buffer.from([0xff, 0xd8, 0xff, 0xe0])), { type: 'image/jpeg', kind: 'image' });
  assert.deepEqual(sniff(Buffer.from('GIF89a')), { type: 'image/gif', kind: 'image' });
  assert.deepEqual(sniff(Buffer.from('RIFF\0\0\0\0WEBPVP8 ')), { type: 'image/webp', kind: 'image' });
  assert.equal(sniff(Buffer.from('{"a": [1, 2]}')).kind, 'json');
  assert.equal(sniff(Buffer.from('héllo\nworld')).kind, 'text');
  // SVG is markup: shown as text, never served as an image.
  assert.equal(sniff(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"></svg>')).kind, 'text');
  assert.equal(sniff(Buffer.from([0, 1, 2, 0xff])).kind, 'binary');
  // A multi-byte character cut at the 4 KiB sniffing window is still text.
  assert.equal(sniff(Buffer.from('a'.repeat(4095) + 'é'.repeat(10))).kind, 'text');
});

test('readable: UTF-8 as is, other bytes escaped as redis-cli does', () => {
  assert.equal(readable(Buffer.from('user:1')), 'user:1');
  assert.equal(readable(Buffer.from('ключ')), 'ключ');
  assert.equal(readable(Buffer.from([0x61, 0x00, 0xff, 0x5c])), 'a\\x00\\xff\\x5c');
});
