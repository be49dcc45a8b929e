#!/usr/bin/env node
// What one small write costs inside SQLite on this machine, without the server around it: the
// shard's own upsert (src/storage/shard.ts, with its counting triggers) of 1 KiB values over
// random keys of a table of --keys rows (default 100,000), committed in batches of B rows, as group commit does.
// Prints µs of CPU (and of wall time) per row for each batch size, and the same with the counting triggers dropped.
//
//   npm run build && node bench/sqlite-row-cost.mjs [--rows 40000] [--keys 100000]
//
// WAL checkpoints are left out (the server runs them on its maintenance thread).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Shard } from '../dist/src/storage/shard.js';
import { COUNTING_TRIGGERS } from '../dist/src/storage/schema.js';
import Database from 'better-sqlite3';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '40000' }, keys: { type: 'string', default: '100000' } } });
const ROWS = Number(values.rows);
const KEYS = Number(values.keys);
const SQLITE = { synchronous: 'NORMAL', cache_size_mb: 16, busy_timeout_ms: 5000, mmap_size_mb: 0 };
const key = (i) => Buffer.from(`key:${String(i).padStart(12, '0')}`);
const value = Buffer.alloc(1024, 'x');

function run(label, dropTriggers) {
  const dir = mkdtempSync(join(tmpdir(), 'blobasaur-rowcost-'));
  const path = join(dir, 'shard.db');
  try {
    if (dropTriggers) {
      // Open once to create the schema, then drop the triggers from a second connection.
      new Shard(0, path, SQLITE).close();
      const db = new Database(path);
      for (const t of COUNTING_TRIGGERS) db.exec(`DROP TRIGGER IF EXISTS "${t}"`);
      db.close();
    }
    const shard = new Shard(0, path, SQLITE);
    // As in the server, where the maintenance thread checkpoints: no checkpoint inside a commit.
    shard.setAutoCheckpoint(1 << 30);
    const now = Date.now();
    const setW = (i) => ({ kind: 'set', ns: null, key: key(i), data: value, codec: 0, size: value.length, now, expiresAt: null });
    // Fill the table so updates hit existing rows as in the benchmark.
    for (let i = 0; i < KEYS; i += 1000) shard.applyGroups([Array.from({ length: Math.min(1000, KEYS - i) }, (_, j) => setW(i + j))]);
    const out = [];
    for (const batch of [1, 16, 128, 1024]) {
      // Each batch size starts from an empty WAL, as the maintenance thread keeps it short.
      shard.checkpoint();
      const started = process.hrtime.bigint();
      const cpu = process.cpuUsage();
      for (let done = 0; done < ROWS; done += batch) {
        // One group per write, as batch_size = 1 does; one transaction per batch.
        shard.applyGroups(Array.from({ length: batch }, () => [setW(Math.floor(Math.random() * KEYS))]));
      }
      const used = process.cpuUsage(cpu);
      const wall = Number(process.hrtime.bigint() - started) / 1e3 / ROWS;
      out.push(`batch ${String(batch).padStart(4)}: ${((used.user + used.system) / ROWS).toFixed(1)} µs CPU/row (${wall.toFixed(1)} wall)`);
    }
    shard.close();
    process.stdout.write(`${label}: ${out.join(', ')}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

run('shard upsert, counting triggers', false);
run('shard upsert, no triggers     ', true);
