// Cost of the per-value checksum candidates: node scripts/bench-checksum.mjs
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { crc32 } from '@node-rs/crc32';

const small = crypto.randomBytes(1024);
const big = crypto.randomBytes(1 << 20);
function bench(name, f, buf, n) {
  f(buf);
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) f(buf);
  const ns = Number(process.hrtime.bigint() - t) / n;
  console.log(`${name.padEnd(14)} ${String(buf.length).padStart(8)} B  ${ns.toFixed(0).padStart(8)} ns/op`);
}
for (const [buf, n] of [[small, 1e6], [big, 300]]) {
  bench('zlib.crc32', (x) => zlib.crc32(x), buf, n);
  bench('node-rs crc32', (x) => crc32(x), buf, n);
  bench('md5', (x) => crypto.createHash('md5').update(x).digest(), buf, Math.min(n, 2e5));
  bench('sha1', (x) => crypto.createHash('sha1').update(x).digest(), buf, Math.min(n, 2e5));
}
