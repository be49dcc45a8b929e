// How long a script's synchronous decode of a large stored value holds the event loop, per codec
// and size (docs/scripting.md). Values are half random, half repeated text, as bench/compression-latency.
// Run: npx tsc -p . && node bench/script-decode.mjs
import { randomBytes } from 'node:crypto';
import { decodeSync, encode } from '../dist/src/storage/codecs.js';

const MiB = 1024 * 1024;
for (const algorithm of ['zstd', 'gzip', 'lz4', 'brotli']) {
  for (const size of [1 * MiB, 16 * MiB, 64 * MiB]) {
    const value = Buffer.concat([randomBytes(size / 2), Buffer.alloc(size / 2, 'abcdefgh')]);
    const enc = await encode(value, { algorithm, level: algorithm === 'gzip' || algorithm === 'brotli' ? 6 : algorithm === 'lz4' ? 1 : 3 });
    const t0 = performance.now();
    const out = decodeSync(enc.codec, enc.payload);
    const ms = performance.now() - t0;
    if (out.length !== size) throw new Error('decode length');
    console.log(`${algorithm.padEnd(6)} ${String(size / MiB).padStart(3)} MiB  ${ms.toFixed(1)} ms`);
  }
}
