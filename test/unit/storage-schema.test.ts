/**
 * The migration runner (storage/schema.ts): a fresh file gets every step, a file from before
 * user_version is recognised and stamped, a newer file is refused, a failed step leaves the
 * previous version intact. Steps after 1 are fakes passed in as the list: the runner takes it as a
 * parameter so it can be tested before the real schema has a second step.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  applyMigrations,
  MIGRATIONS,
  registerSlotFunction,
  SCHEMA_VERSION,
  SchemaError,
  schemaTables,
  schemaVersion,
  shardFileName,
  shardPath,
  type Migration,
} from '../../src/storage/schema.js';
import { Shard } from '../../src/storage/shard.js';
import { openFormat1Shard } from '../helpers/format1.js';
import { tempDir } from '../helpers/servers.js';

const SQLITE = { synchronous: 'NORMAL', cache_size_mb: 4, busy_timeout_ms: 1000, mmap_size_mb: 0 } as const;

/** A next step as a later release might add one: a column for chunked blobs. */
const NEXT = SCHEMA_VERSION + 1;
const ADD_CHUNKS: Migration = { version: NEXT, description: 'blobs.chunks', up: 'ALTER TABLE blobs ADD COLUMN chunks INTEGER NOT NULL DEFAULT 0' };

/** What migrations 1 and 2 create. */
const V1_OBJECTS = ['table blobs', 'index blobs_expires_at', 'table ns_blobs', 'index ns_blobs_expires_at'];
/** Migration 2 adds the count tables and their triggers (3 adds a column only). */
const COUNT_OBJECTS = [
  'table blobs',
  'trigger blobs_count_delete',
  'trigger blobs_count_insert',
  'trigger blobs_count_update',
  'index blobs_expires_at',
  'table ns_blobs',
  'trigger ns_blobs_count_delete',
  'trigger ns_blobs_count_insert',
  'trigger ns_blobs_count_update',
  'index ns_blobs_expires_at',
  'table ns_changes',
  'table ns_counts',
  'trigger ns_counts_appear',
  'trigger ns_counts_vanish',
  'table stats',
];
/** Migration 4 adds the slot indexes; migration 5 the blob columns' indexes, dead_blobs and the triggers that fill it. */
const CURRENT_OBJECTS = [
  ...COUNT_OBJECTS,
  'index blobs_slot',
  'index ns_blobs_slot',
  'index ns_counts_slot',
  'index blobs_blob_id',
  'trigger blobs_blob_gone',
  'trigger blobs_blob_replaced',
  'table dead_blobs',
  'index ns_blobs_blob_id',
  'trigger ns_blobs_blob_gone',
  'trigger ns_blobs_blob_replaced',
  'table ns_tombstones',
  'trigger ns_blobs_dead_delete',
].sort((a, b) => (a.split(' ')[1] < b.split(' ')[1] ? -1 : 1));

function objects(db: Database.Database): string[] {
  return db.prepare("SELECT type || ' ' || name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[];
}

function freshFile(): string {
  return join(tempDir('blobasaur-schema-'), 'shard-0.db');
}

test('shard files are named shard-N.db inside the data directory', () => {
  assert.equal(shardFileName(0), 'shard-0.db');
  assert.equal(shardFileName(17), 'shard-17.db');
  assert.equal(shardPath('/var/lib/blobasaur', 3), '/var/lib/blobasaur/shard-3.db');
});

test('the schema today is version 7: the keyed tables (checksum and blob columns) with their expiry and slot indexes, the counts their triggers keep, dead blobs and namespace tombstones', () => {
  assert.equal(SCHEMA_VERSION, 7);
  assert.deepEqual(schemaTables(1), [
    { name: 'blobs', columns: ['key', 'codec', 'size', 'created_at', 'updated_at', 'expires_at', 'version', 'data'] },
    { name: 'ns_blobs', columns: ['namespace', 'key', 'codec', 'size', 'created_at', 'updated_at', 'expires_at', 'version', 'data'] },
  ]);
  assert.deepEqual(schemaTables(), [
    { name: 'blobs', columns: ['key', 'codec', 'size', 'created_at', 'updated_at', 'expires_at', 'version', 'data', 'checksum', 'blob_id', 'blob_stored'] },
    { name: 'dead_blobs', columns: ['blob_id'] },
    { name: 'ns_blobs', columns: ['namespace', 'key', 'codec', 'size', 'created_at', 'updated_at', 'expires_at', 'version', 'data', 'checksum', 'blob_id', 'blob_stored'] },
    { name: 'ns_changes', columns: ['namespace', 'delta'] },
    { name: 'ns_counts', columns: ['namespace', 'fields'] },
    { name: 'ns_tombstones', columns: ['namespace', 'upto'] },
    { name: 'stats', columns: ['id', 'keys', 'expires', 'fields', 'logical', 'stored'] },
  ]);
});

test('a fresh file gets every migration and the last version', () => {
  const file = freshFile();
  const db = new Database(file);
  assert.deepEqual(applyMigrations(db, file), { from: 0, to: SCHEMA_VERSION });
  assert.equal(schemaVersion(db), SCHEMA_VERSION);
  assert.deepEqual(objects(db), CURRENT_OBJECTS);
  // Opening again changes nothing.
  assert.deepEqual(applyMigrations(db, file), { from: SCHEMA_VERSION, to: SCHEMA_VERSION });
  db.close();

  const file2 = freshFile();
  const db2 = new Database(file2);
  assert.deepEqual(applyMigrations(db2, file2, [...MIGRATIONS, ADD_CHUNKS]), { from: 0, to: NEXT });
  assert.equal(schemaVersion(db2), NEXT);
  assert.ok((db2.pragma('table_info(blobs)') as { name: string }[]).some((c) => c.name === 'chunks'));
  db2.close();
});

test('a file written before user_version (format 1) is stamped version 1, then migrated, with its rows untouched', () => {
  const file = freshFile();
  const old = openFormat1Shard(file);
  old.prepare('INSERT INTO blobs (key, codec, size, created_at, updated_at, expires_at, version, data) VALUES (?, 0, 3, 10, 20, 99, 4, ?)').run(Buffer.from('k'), Buffer.from('abc'));
  old.prepare('INSERT INTO ns_blobs (namespace, key, codec, size, created_at, updated_at, expires_at, version, data) VALUES (?, ?, 0, 1, 1, 2, NULL, 7, ?)').run(Buffer.from('ns'), Buffer.from('f'), Buffer.from('v'));
  assert.equal(schemaVersion(old), 0);
  const before = old.prepare('SELECT * FROM blobs').all();
  old.close();

  const stamped = new Database(file);
  assert.deepEqual(applyMigrations(stamped, file, MIGRATIONS.slice(0, 1)), { from: 0, to: 1 });
  assert.deepEqual(objects(stamped), V1_OBJECTS);
  stamped.close();

  const shard = new Shard(0, file, SQLITE);
  shard.close();
  const db = new Database(file);
  assert.equal(schemaVersion(db), SCHEMA_VERSION);
  // The format 1 columns are untouched (migration 3 added a checksum column beside them; migration 4 a generated slot column).
  assert.deepEqual(db.prepare('SELECT key, codec, size, created_at, updated_at, expires_at, version, data FROM blobs').all(), before);
  assert.equal(db.prepare('SELECT count(*) FROM ns_blobs').pluck().get(), 1);
  assert.deepEqual(objects(db), CURRENT_OBJECTS);
  assert.deepEqual(db.prepare('SELECT blob_id, blob_stored FROM blobs').all(), [{ blob_id: null, blob_stored: null }]);
  // Migration 2 counted the rows that were there: one key with an expiry, one field, 4 bytes.
  assert.deepEqual(db.prepare('SELECT keys, expires, fields, logical, stored FROM stats').get(), { keys: 1, expires: 1, fields: 1, logical: 4, stored: 4 });
  assert.deepEqual(db.prepare('SELECT namespace, fields FROM ns_counts').all(), [{ namespace: Buffer.from('ns'), fields: 1 }]);
  // Rows written before migration 3 have no checksum: they are not checked on read.
  assert.equal(db.prepare('SELECT checksum FROM blobs').pluck().get(), null);
  // And a later step runs on it, after the stamp.
  assert.deepEqual(applyMigrations(db, file, [...MIGRATIONS, ADD_CHUNKS]), { from: SCHEMA_VERSION, to: NEXT });
  assert.equal(db.prepare('SELECT chunks FROM blobs').pluck().get(), 0);
  db.close();
});

test('an unversioned file whose tables blobasaur did not create is refused and left alone', () => {
  const file = freshFile();
  const db = new Database(file);
  db.exec('CREATE TABLE blobs (key BLOB PRIMARY KEY, value BLOB)');
  assert.throws(
    () => applyMigrations(db, file),
    (e: Error) =>
      e instanceof SchemaError &&
      e.message === `${file} is not a blobasaur shard file: it has no schema version and tables blobasaur did not create (blobs(key, value))`,
  );
  assert.equal(schemaVersion(db), 0);
  assert.deepEqual(objects(db), ['table blobs']);
  db.close();
});

test('a file with a newer version than this build knows is refused, naming the file, and not changed', () => {
  const file = freshFile();
  const db = new Database(file);
  applyMigrations(db, file, [...MIGRATIONS, ADD_CHUNKS]);
  db.close();
  const expected = `${file} has schema version ${NEXT}: it was written by a newer blobasaur (this one reads versions up to ${SCHEMA_VERSION}). Run that newer version, or restore a backup taken before the upgrade.`;
  assert.throws(() => new Shard(0, file, SQLITE), (e: Error) => e instanceof SchemaError && e.message === expected);
  // The refused Shard closed its connection: with locking_mode EXCLUSIVE it would still hold the file.
  assert.throws(() => new Shard(0, file, { ...SQLITE, locking_mode: 'EXCLUSIVE' }), (e: Error) => e.message === expected);
  const again = new Database(file, { timeout: 0 });
  again.exec('BEGIN IMMEDIATE; COMMIT');
  assert.equal(schemaVersion(again), NEXT);
  again.close();
});

test('a failed step rolls back whole and leaves the version before it', () => {
  const file = freshFile();
  const db = new Database(file);
  // On top of migration 1 alone, so the version numbers below stay as written.
  const chunks2: Migration = { ...ADD_CHUNKS, version: 2 };
  const steps: Migration[] = [
    MIGRATIONS[0],
    chunks2,
    { version: 3, description: 'adds a side table, then fails', up: 'CREATE TABLE side (x); INSERT INTO nosuch VALUES (1)' },
  ];
  assert.throws(
    () => applyMigrations(db, file, steps),
    (e: Error) =>
      e instanceof SchemaError &&
      e.message === `${file}: migration 3 (adds a side table, then fails) failed: no such table: nosuch; the file is left at schema version 2`,
  );
  // Steps 1 and 2 committed; step 3's table is gone with its transaction.
  assert.equal(schemaVersion(db), 2);
  assert.equal(db.inTransaction, false);
  assert.deepEqual(objects(db), V1_OBJECTS);

  // A step written as a function that throws half-way does the same.
  const fnStep: Migration = {
    version: 3,
    description: 'function step',
    up: (d) => {
      d.exec('CREATE TABLE side (x)');
      throw new Error('disk on fire');
    },
  };
  assert.throws(() => applyMigrations(db, file, [MIGRATIONS[0], chunks2, fnStep]), /migration 3 \(function step\) failed: disk on fire; the file is left at schema version 2$/);
  assert.equal(schemaVersion(db), 2);
  assert.ok(!objects(db).includes('table side'));
  // Fixed, the same list then runs to the end.
  const fixed: Migration = { version: 3, description: 'side table', up: 'CREATE TABLE side (x)' };
  assert.deepEqual(applyMigrations(db, file, [MIGRATIONS[0], chunks2, fixed]), { from: 2, to: 3 });
  db.close();
});

test('a list that is not numbered 1, 2, 3… is a programming error, caught before any step runs', () => {
  const file = freshFile();
  const db = new Database(file);
  assert.throws(() => applyMigrations(db, file, [MIGRATIONS[0], { ...ADD_CHUNKS, version: 3 }]), /migration 2 is numbered 3/);
  assert.deepEqual(objects(db), []);
  db.close();
});

test('migration 7: no trigger loads a replaced or deleted value, and the counts and byte sums stay exact across it', () => {
  const file = freshFile();
  const db = new Database(file);
  registerSlotFunction(db);
  applyMigrations(db, file, MIGRATIONS.slice(0, 6));
  const put = db.prepare(
    `INSERT INTO blobs (key, size, created_at, updated_at, expires_at, data, blob_id, blob_stored) VALUES (?, ?, 0, 0, ?, ?, ?, ?)
     ON CONFLICT (key) DO UPDATE SET size = excluded.size, expires_at = excluded.expires_at, data = excluded.data, blob_id = excluded.blob_id, blob_stored = excluded.blob_stored`,
  );
  const nsPut = db.prepare(
    `INSERT INTO ns_blobs (namespace, key, size, created_at, updated_at, data, blob_stored) VALUES (?, ?, ?, 0, 0, ?, ?)
     ON CONFLICT (namespace, key) DO UPDATE SET size = excluded.size, data = excluded.data, blob_stored = excluded.blob_stored`,
  );
  const big = (n: number): Buffer => Buffer.alloc(n, 7);
  // Written under format 6: an inline value, one with a TTL, a chunked one, two fields.
  put.run(Buffer.from('a'), 300_000, null, big(300_000), null, null);
  put.run(Buffer.from('b'), 10, 99, big(10), null, null);
  put.run(Buffer.from('c'), 5_000_000, null, Buffer.alloc(0), 1, 4_000_000);
  nsPut.run(Buffer.from('h'), Buffer.from('f1'), 70_000, big(70_000), null);
  nsPut.run(Buffer.from('h'), Buffer.from('f2'), 5, big(5), null);
  assert.deepEqual(applyMigrations(db, file), { from: 6, to: 7 });
  const triggers = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").all() as { name: string; sql: string }[];
  assert.deepEqual(triggers.filter((t) => /OLD\.data/i.test(t.sql)).map((t) => t.name), [], 'a mention of OLD.data loads the old value');
  // Overwrites (inline to inline, inline to chunked, chunked to inline), deletes, a field's overwrite and delete.
  put.run(Buffer.from('a'), 200_000, 5, big(200_000), null, null);
  put.run(Buffer.from('b'), 9_000_000, null, Buffer.alloc(0), 2, 8_000_000);
  put.run(Buffer.from('c'), 3, null, big(3), null, null);
  put.run(Buffer.from('d'), 1, null, big(1), null, null);
  db.prepare('DELETE FROM blobs WHERE key = ?').run(Buffer.from('d'));
  nsPut.run(Buffer.from('h'), Buffer.from('f1'), 100_000, big(100_000), null);
  db.prepare('DELETE FROM ns_blobs WHERE key = ?').run(Buffer.from('f2'));
  const stats = db.prepare('SELECT keys, expires, fields, logical, stored FROM stats WHERE id = 0').get();
  const recount = db
    .prepare(
      `SELECT (SELECT count(*) FROM blobs) AS keys, (SELECT count(*) FROM blobs WHERE expires_at IS NOT NULL) AS expires,
              (SELECT count(*) FROM ns_blobs) AS fields,
              (SELECT sum(size) FROM blobs) + (SELECT sum(size) FROM ns_blobs) AS logical,
              (SELECT sum(coalesce(blob_stored, length(data))) FROM blobs) + (SELECT sum(coalesce(blob_stored, length(data))) FROM ns_blobs) AS stored`,
    )
    .get();
  assert.deepEqual(stats, recount);
  assert.deepEqual(stats, { keys: 3, expires: 1, fields: 1, logical: 200_000 + 9_000_000 + 3 + 100_000, stored: 200_000 + 8_000_000 + 3 + 100_000 });
  assert.deepEqual(db.prepare('SELECT namespace, fields FROM ns_counts').raw().all(), [[Buffer.from('h'), 1]]);
  db.close();
});

test('migration 4 computes the slot of existing rows, and every later write computes its own', () => {
  const file = freshFile();
  const db = new Database(file);
  registerSlotFunction(db);
  applyMigrations(db, file, MIGRATIONS.slice(0, 3));
  const put = db.prepare('INSERT INTO blobs (key, size, created_at, updated_at, data) VALUES (?, 1, 0, 0, ?)');
  const nsPut = db.prepare('INSERT INTO ns_blobs (namespace, key, size, created_at, updated_at, data) VALUES (?, ?, 1, 0, 0, ?)');
  put.run(Buffer.from('foo'), Buffer.from('x'));
  nsPut.run(Buffer.from('{user:1}:ns'), Buffer.from('bar'), Buffer.from('x'));
  assert.deepEqual(applyMigrations(db, file, MIGRATIONS.slice(0, 4)), { from: 3, to: 4 });
  put.run(Buffer.from('{foo}:later'), Buffer.from('x'));
  nsPut.run(Buffer.from('{user:1}:ns'), Buffer.from('other'), Buffer.from('x'));
  // Slots as CLUSTER KEYSLOT gives them: foo 12182, bar 5061, {user:1} 10778, other 11361 (redis-server).
  const bySlot = (sql: string, slot: number): string[] => (db.prepare(sql).pluck().all(slot) as Buffer[]).map((b) => b.toString()).sort();
  assert.deepEqual(bySlot('SELECT key FROM blobs WHERE slot = ?', 12182), ['foo', '{foo}:later']);
  assert.deepEqual(bySlot('SELECT key FROM ns_blobs WHERE slot = ?', 5061), ['bar']);
  assert.deepEqual(bySlot('SELECT key FROM ns_blobs WHERE slot = ?', 11361), ['other']);
  assert.deepEqual(bySlot('SELECT namespace FROM ns_counts WHERE slot = ?', 10778), ['{user:1}:ns']);
  assert.match(String((db.prepare('EXPLAIN QUERY PLAN SELECT key FROM blobs WHERE slot = ?').all(1) as { detail: string }[])[0].detail), /USING INDEX blobs_slot/);
  db.close();
  // A connection without the function cannot write a row whose slot it could not index.
  const bare = new Database(file);
  assert.throws(() => bare.prepare('DELETE FROM blobs').run(), /unknown function: blobasaur_key_slot\(\)/);
  bare.close();
});
