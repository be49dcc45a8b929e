// Cost of checksum verification on a 1 KiB point read: node bench/checksum-get.mjs (after a build).
// Same rows read twice over: once with their checksums, once with the checksum column cleared
// (rows from before migration 2, which are not verified).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Shard } from '../dist/src/storage/shard.js';

const ROWS = 10_000;
const READS = 300_000;
const dir = mkdtempSync(join(tmpdir(), 'bench-checksum-'));
const shard = new Shard(0, join(dir, 'shard-0.db'), { synchronous: 'NORMAL', cache_size_mb: 64, busy_timeout_ms: 1000, mmap_size_mb: 0 });
const keys = Array.from({ length: ROWS }, (_, i) => Buffer.from(`key:${i}`));
const writes = keys.map((key) => ({ kind: 'set', ns: null, key, data: randomBytes(1024), codec: 0, size: 1024, now: 1, expiresAt: null }));
shard.applyGroups(writes.map((w) => [w]));

function run(label) {
  const results = [];
  for (let round = 0; round < 5; round++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < READS; i++) shard.get(keys[i % ROWS], 2);
    results.push(Number(process.hrtime.bigint() - t) / READS);
    // Let the shared read transaction end between rounds, as between event-loop turns.
  }
  results.sort((a, b) => a - b);
  console.log(`${label.padEnd(22)} median ${results[2].toFixed(0)} ns per 1 KiB GET (rounds: ${results.map((r) => r.toFixed(0)).join(', ')})`);
  return results[2];
}

await new Promise((r) => setImmediate(r));
const withSum = run('checksum verified');
await new Promise((r) => setImmediate(r));
// The checksum column cleared: the same reads without verification.
shard.applyGroups([[{ kind: 'flush' }]]);
for (const w of writes) w.data = Buffer.from(w.data);
shard.applyGroups(writes.map((w) => [w]));
const db = shard['db'];
db.prepare('UPDATE blobs SET checksum = NULL').run();
await new Promise((r) => setImmediate(r));
const without = run('no checksum');
console.log(`verification costs ${(withSum - without).toFixed(0)} ns per read (${(((withSum - without) / without) * 100).toFixed(1)}% of the shard read)`);
shard.close();
