#!/usr/bin/env node
// Small-GET latency while another client SETs 4 MiB compressible values with brotli level 9.
// Shows whether compression stalls other clients (it must run off the event loop).
//
//   node bench/compression-latency.mjs [--seconds 8] [--out docs/compression-latency.md | -]
//
// Starts our server (dist/, so run `npm ci` or `npm run build` first) on 127.0.0.1 with a fresh
// data directory, measures a reader alone, then the same reader with the writer running.
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { root, startBlobasaur, timeGets } from './lib.mjs';

const { values: opts } = parseArgs({
  options: { seconds: { type: 'string', default: '8' }, out: { type: 'string', default: 'docs/compression-latency.md' } },
});
const SECONDS = Number(opts.seconds);
const { port, stop: cleanup } = await startBlobasaur(`log_level = "warn"\n[storage_compression]\nenabled = true\nalgorithm = "brotli"\nlevel = 9\n`, 'blobasaur-clat-');

try {
  const reader = new Redis({ port, host: '127.0.0.1' });
  const writer = new Redis({ port, host: '127.0.0.1' });
  for (let i = 0; i < 1000; i++) await reader.set(`small:${i}`, 'x'.repeat(100));

  const smallKeys = Array.from({ length: 1000 }, (_, k) => `small:${k}`);
  const measure = (seconds) => timeGets(reader, smallKeys, seconds * 1000);

  const idle = await measure(SECONDS);
  // Compressible but not trivially so: distinct lines of text.
  const line = (i) => `line ${i}: blobasaur keeps blobs on disk in SQLite and speaks RESP to its clients\n`;
  const big = Buffer.from(Array.from({ length: 52_000 }, (_, i) => line(i)).join('').slice(0, 4 * 1024 * 1024));
  let stop = false;
  let sets = 0;
  const load = (async () => {
    for (let i = 0; !stop && i < 10_000; i++) {
      await writer.set(`big:${i % 8}`, big);
      sets++;
    }
  })();
  const loaded = await measure(SECONDS);
  stop = true;
  await load;
  const info = await reader.info('blobasaur');
  reader.disconnect();
  writer.disconnect();

  const f = (x) => x.toFixed(2);
  const ratio = /compression_ratio:([\d.]+)/.exec(info)?.[1] ?? '?';
  const doc = `# Small-GET latency under brotli-9 compression load

Made by \`node bench/compression-latency.mjs --seconds ${SECONDS}\` on ${new Date().toISOString().slice(0, 10)}
(${cpus().length} cores, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}). One client GETs 100-byte
values one at a time; in the second phase another client SETs 4 MiB compressible text values
(brotli level 9, compression ratio ${ratio}) back to back on its own connection.

| phase | GETs | p50 ms | p99 ms | max ms |
| --- | ---: | ---: | ---: | ---: |
| reader alone | ${idle.n} | ${f(idle.p50)} | ${f(idle.p99)} | ${f(idle.max)} |
| reader + 4 MiB brotli-9 SETs (${sets} SETs, ${f((sets * 4) / SECONDS)} MiB/s) | ${loaded.n} | ${f(loaded.p50)} | ${f(loaded.p99)} | ${f(loaded.max)} |

Compression runs on libuv's thread pool (gzip, brotli, lz4) or on worker threads (zstd), so the
event loop keeps answering the reader; what remains is the cost of receiving 4 MiB values, copying
them and committing them to SQLite on the event loop, and this 2-core machine's second core being
busy compressing.
`;
  if (opts.out === '-') process.stdout.write(doc);
  else {
    writeFileSync(join(root, opts.out), doc);
    process.stdout.write(doc);
  }
} finally {
  cleanup();
}
