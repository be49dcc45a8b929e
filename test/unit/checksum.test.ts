/**
 * The value checksum (storage/checksum.ts): the SIMD CRC-32 must give exactly zlib's CRC-32, seeds
 * included, or files written before it (and per-chunk checksums chained over a value) would read
 * back as damaged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { checksum, checksumImplementation, ChecksumError, verifyChecksum } from '../../src/storage/checksum.js';

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

function bytes(n: number, next: () => number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = next() >>> 24;
  return b;
}

test('the native SIMD implementation is the one loaded on this platform', () => {
  assert.equal(checksumImplementation, 'simd');
});

test('checksum equals zlib.crc32 for every length from 0 to 300 and for large buffers', () => {
  const next = prng(7);
  for (let n = 0; n <= 300; n++) {
    const b = bytes(n, next);
    assert.equal(checksum(b), zlib.crc32(b), `length ${n}`);
  }
  for (const n of [4095, 4096, 65_537, 1_048_576 + 3]) {
    const b = bytes(n, next);
    assert.equal(checksum(b), zlib.crc32(b), `length ${n}`);
  }
});

test('a checksum continued over pieces (seed) equals the checksum of the whole, as zlib computes it', () => {
  const next = prng(11);
  const whole = bytes(300_001, next);
  for (const cuts of [[1], [4096, 65_536], [7, 8, 9, 100_000, 299_999]]) {
    let crc = 0;
    let at = 0;
    for (const end of [...cuts, whole.length]) {
      crc = checksum(whole.subarray(at, end), crc);
      at = end;
    }
    assert.equal(crc, zlib.crc32(whole));
  }
  assert.equal(checksum(Buffer.from('456789'), checksum(Buffer.from('123'))), 0xcbf43926);
});

test('verifyChecksum accepts the stored checksum, skips rows without one and names both values on a mismatch', () => {
  const b = Buffer.from('123456789');
  verifyChecksum(b, 0xcbf43926);
  verifyChecksum(b, null);
  verifyChecksum(b, undefined);
  assert.throws(() => verifyChecksum(b, 0x12345678), (err: unknown) => {
    assert.ok(err instanceof ChecksumError);
    assert.equal(err.message, 'checksum mismatch (stored 12345678, computed cbf43926)');
    return true;
  });
});
