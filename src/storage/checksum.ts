/**
 * The checksum stored beside every value (and usable per chunk): CRC-32 of the stored bytes, as
 * they are on disk (after compression), so a damaged row is caught before any codec looks at it.
 *
 * The same CRC-32 (zlib's polynomial) from two implementations that give identical results,
 * seeds included, so files written with either read back with either:
 * - @node-rs/crc32 (SIMD, PCLMULQDQ): ~16 GB/s here, 65 µs per MiB;
 * - zlib.crc32, built into Node (>= 20.15): ~6.5 GB/s, 162 µs per MiB — the fallback where the
 *   native package has no build for the platform.
 * Every SET of 1 MiB and every read of one from SQLite computes one, so the difference is ~100 µs
 * of event-loop time per MiB (`node scripts/bench-checksum.mjs`).
 */
import { createRequire } from 'node:module';
import zlib from 'node:zlib';

type Crc32 = (bytes: Buffer, seed?: number) => number;

// Every write computes one: fail at start, with the reason, rather than on the first SET.
if (typeof zlib.crc32 !== 'function') {
  throw new Error(`blobasaur needs Node.js 20.15 or later (zlib.crc32); this is ${process.version}`);
}

function loadSimdCrc32(): Crc32 | null {
  try {
    const lib = createRequire(import.meta.url)('@node-rs/crc32') as { crc32?: unknown };
    return typeof lib.crc32 === 'function' ? (lib.crc32 as Crc32) : null;
  } catch {
    return null;
  }
}

const simd = loadSimdCrc32();
const crc32: Crc32 = simd ?? ((bytes, seed) => zlib.crc32(bytes, seed));

/** Which implementation computes checksums: zlib only where the native package did not load. */
export const checksumImplementation: 'simd' | 'zlib' = simd === null ? 'zlib' : 'simd';

/** The checksum of `bytes`; `seed` continues one over several buffers (chunks of one value). */
export function checksum(bytes: Buffer, seed = 0): number {
  return crc32(bytes, seed);
}

/** A stored value whose bytes do not match the checksum written with them. */
export class ChecksumError extends Error {
  override name = 'ChecksumError';
}

/**
 * Throws ChecksumError when `bytes` do not match `expected`. Rows written before checksums
 * existed have none (null) and are not checked.
 */
export function verifyChecksum(bytes: Buffer, expected: number | null | undefined): void {
  if (expected === null || expected === undefined) return;
  const actual = checksum(bytes);
  if (actual !== expected) throw new ChecksumError(`checksum mismatch (stored ${hex(expected)}, computed ${hex(actual)})`);
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}
