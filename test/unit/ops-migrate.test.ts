/** migrateDataDir edge cases: metadata kept exactly, refusals, and the end state after a late kill. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ShardRing } from '../../src/storage/mpchash.js';
import { registerSlotFunction, SCHEMA_VERSION, shardPath } from '../../src/storage/schema.js';

/** Raw connections that write rows need the slot columns' function (schema migration 3). */
function withSlotFunction(db: Database.Database): Database.Database {
  registerSlotFunction(db);
  return db;
}
import { Shard } from '../../src/storage/shard.js';
import { migrateDataDir, MigrateError } from '../../src/tools/migrate.js';
import { openFormat1Shard, writeFormat1Layout } from '../helpers/format1.js';
import { tempDir } from '../helpers/servers.js';

const SQLITE = { synchronous: 'NORMAL', cache_size_mb: 4, busy_timeout_ms: 1000, mmap_size_mb: 0 } as const;

/** A data directory of `shards` shards with `n` plain rows and `n` namespaced rows, placed as the server would. */
function makeDir(shards: number, n: number): string {
  const dir = tempDir('blobasaur-ops-migrate-unit-');
  writeFileSync(join(dir, 'blobasaur.json'), `${JSON.stringify({ format: 1, num_shards: shards })}\n`);
  const ring = new ShardRing(shards);
  for (let s = 0; s < shards; s++) new Shard(s, shardPath(dir, s), SQLITE).close();
  const dbs = Array.from({ length: shards }, (_, s) => withSlotFunction(new Database(shardPath(dir, s))));
  for (let i = 0; i < n; i++) {
    const key = Buffer.from(`k${i}`);
    dbs[ring.shardOf(key)]
      .prepare('INSERT INTO blobs (key, codec, size, created_at, updated_at, expires_at, version, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(key, i % 3, 100 + i, 1000 + i, 2000 + i, i % 2 === 0 ? null : 9e12 + i, i % 5, Buffer.from(`data${i}`));
    const field = Buffer.from(`f${i}`);
    dbs[ring.shardOf(field)]
      .prepare('INSERT INTO ns_blobs (namespace, key, codec, size, created_at, updated_at, expires_at, version, data) VALUES (?, ?, 0, 1, 1, 2, NULL, 7, ?)')
      .run(Buffer.from(`ns${i % 4}`), field, Buffer.from(`nsdata${i}`));
  }
  for (const db of dbs) db.close();
  return dir;
}

/** Every row of every shard, as sorted JSON, without the shard it is in. */
function allRows(dir: string, shards: number): string[] {
  const rows: string[] = [];
  for (let s = 0; s < shards; s++) {
    const db = new Database(shardPath(dir, s), { readonly: true });
    for (const r of db.prepare('SELECT key, codec, size, created_at, updated_at, expires_at, version, data FROM blobs').all()) rows.push(JSON.stringify(r));
    for (const r of db.prepare('SELECT namespace, key, codec, size, created_at, updated_at, expires_at, version, data FROM ns_blobs').all()) rows.push(JSON.stringify(r));
    db.close();
  }
  return rows.sort();
}

test('1 -> 3 -> 1 keeps every row with its metadata exactly', () => {
  const dir = makeDir(1, 500);
  const before = allRows(dir, 1);
  const up = migrateDataDir(dir, 3, { batch: 37 });
  assert.deepEqual({ ...up, moved: up.moved > 0 }, { from: 1, to: 3, rows: 1000, moved: true, resumed: false, nothingToDo: false });
  assert.deepEqual(allRows(dir, 3), before);
  const down = migrateDataDir(dir, 1);
  assert.equal(down.moved, up.moved, 'the same rows move back');
  assert.deepEqual(allRows(dir, 1), before);
  assert.equal(existsSync(shardPath(dir, 1)), false);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'blobasaur.json'), 'utf8')), { format: 1, num_shards: 1 });
});

test('refuses unknown tables and a leftover shard file with rows, before touching anything', () => {
  const dir = makeDir(2, 20);
  const db = new Database(shardPath(dir, 1));
  registerSlotFunction(db);
  db.exec('CREATE TABLE extra (x)');
  db.close();
  assert.throws(() => migrateDataDir(dir, 3), (e: Error) => e instanceof MigrateError && e.message === `${shardPath(dir, 1)} has tables this version cannot migrate: extra`);
  assert.equal(existsSync(join(dir, 'migrate.json')), false);

  const dir2 = makeDir(2, 20);
  new Shard(2, shardPath(dir2, 2), SQLITE).close();
  const stray = new Database(shardPath(dir2, 2));
  registerSlotFunction(stray);
  stray.prepare("INSERT INTO blobs (key, size, created_at, updated_at, data) VALUES (X'00', 1, 1, 1, X'00')").run();
  stray.close();
  assert.throws(() => migrateDataDir(dir2, 3), /shard-2\.db already holds 1 rows but is not one of the 2 shards; move it away first/);
  assert.throws(() => migrateDataDir(dir2, 0), /--to-shards must be an integer 1\.\.1024/);
});

test('killed after the new count was recorded: the next run only cleans up', () => {
  const dir = makeDir(3, 50);
  const before = allRows(dir, 3);
  migrateDataDir(dir, 2);
  // As if killed between writing blobasaur.json and removing the old files and migrate.json.
  writeFileSync(join(dir, 'migrate.json'), JSON.stringify({ format: 1, from: 3, to: 2, rows_before: 100, started_at: '', done_sources: [0, 1, 2] }));
  new Shard(2, shardPath(dir, 2), SQLITE).close();
  const r = migrateDataDir(dir, 2);
  assert.deepEqual(r, { from: 3, to: 2, rows: 100, moved: 0, resumed: true, nothingToDo: false });
  assert.equal(existsSync(shardPath(dir, 2)), false);
  assert.equal(existsSync(join(dir, 'migrate.json')), false);
  assert.deepEqual(allRows(dir, 2), before);
});

test('a format 1 directory (no schema version) is upgraded in place as it migrates, every file stamped', () => {
  const dir = tempDir('blobasaur-ops-migrate-format1-');
  writeFormat1Layout(dir, 2);
  const ring = new ShardRing(2);
  const dbs = [0, 1].map((s) => openFormat1Shard(shardPath(dir, s)));
  for (let i = 0; i < 200; i++) {
    const key = Buffer.from(`k${i}`);
    dbs[ring.shardOf(key)]
      .prepare('INSERT INTO blobs (key, codec, size, created_at, updated_at, expires_at, version, data) VALUES (?, 0, 5, ?, ?, ?, ?, ?)')
      .run(key, 1000 + i, 2000 + i, i % 2 === 0 ? null : 9e12 + i, i % 5, Buffer.from(`v${i}`));
    const field = Buffer.from(`f${i}`);
    dbs[ring.shardOf(field)]
      .prepare('INSERT INTO ns_blobs (namespace, key, codec, size, created_at, updated_at, expires_at, version, data) VALUES (?, ?, 0, 1, 1, 2, NULL, 7, ?)')
      .run(Buffer.from(`ns${i % 4}`), field, Buffer.from(`nsdata${i}`));
  }
  for (const db of dbs) db.close();
  const before = allRows(dir, 2);
  assert.equal(migrateDataDir(dir, 3).rows, 400);
  assert.deepEqual(allRows(dir, 3), before);
  for (let s = 0; s < 3; s++) {
    const db = new Database(shardPath(dir, s), { readonly: true });
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION, `shard ${s}`);
    db.close();
  }
});

test('a shard stamped by a newer blobasaur is refused before anything moves', () => {
  const dir = makeDir(2, 20);
  const db = new Database(shardPath(dir, 1));
  registerSlotFunction(db);
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  const before = allRows(dir, 2);
  assert.throws(
    () => migrateDataDir(dir, 3),
    (e: Error) => e instanceof MigrateError && e.message.startsWith(`${shardPath(dir, 1)} has schema version ${SCHEMA_VERSION + 1}: it was written by a newer blobasaur`),
  );
  assert.equal(existsSync(join(dir, 'migrate.json')), false);
  assert.equal(existsSync(shardPath(dir, 2)), false);
  assert.deepEqual(allRows(dir, 2), before);
});
