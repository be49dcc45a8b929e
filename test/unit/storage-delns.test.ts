/**
 * DEL of a large namespace takes its rows away in O(1) with a tombstone (schema migration 6) and
 * the purge deletes them afterwards in steps: counts are right at once, a shard file left between
 * the two (a crash) opens without the namespace's old fields, fields written after the DEL
 * survive the purge, and the byte sums end where the rows left say.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Shard, type ShardWrite } from '../../src/storage/shard.js';
import { repairShardFile } from '../../src/tools/repair.js';
import { tempDir } from '../helpers/servers.js';
import { shardSet } from '../helpers/shard-writes.js';

const SQLITE = { synchronous: 'NORMAL', cache_size_mb: 4, busy_timeout_ms: 1000, mmap_size_mb: 0 } as const;

const b = (s: string): Buffer => Buffer.from(s);
const set = shardSet;
const delns = (ns: string): ShardWrite => ({ kind: 'delns', ns: b(ns) });

function fields(shard: Shard, ns: string): string[] {
  return shard.nsFields(b(ns), null, -1, Date.now()).map((r) => `${r.key.toString()}=${r.data.toString()}`);
}

/** What the rows of the file say, beside what the maintained counts say. */
function audit(path: string): { rows: number; tombstones: number; stats: unknown; actual: unknown } {
  const db = new Database(path, { readonly: true });
  try {
    return {
      rows: Number(db.prepare('SELECT count(*) FROM ns_blobs').pluck().get()),
      tombstones: Number(db.prepare('SELECT count(*) FROM ns_tombstones').pluck().get()),
      stats: db.prepare('SELECT fields, logical, stored FROM stats').get(),
      actual: db
        .prepare(
          `SELECT (SELECT count(*) FROM ns_blobs WHERE rowid > coalesce((SELECT upto FROM ns_tombstones t WHERE t.namespace = ns_blobs.namespace), 0)) AS fields,
                  (SELECT coalesce(sum(size), 0) FROM ns_blobs) AS logical, (SELECT coalesce(sum(length(data)), 0) FROM ns_blobs) AS stored`,
        )
        .get(),
    };
  } finally {
    db.close();
  }
}

/** Runs purge steps until the shard says there is nothing left (bounded). */
function purgeAll(shard: Shard): number {
  let steps = 0;
  while (shard.hasPurgeWork()) {
    assert.deepEqual(shard.applyGroups([[{ kind: 'purge', limit: 500 }]]), [null]);
    if (++steps > 1000) throw new Error('purge did not end');
  }
  return steps;
}

test('DEL of a large namespace: gone and uncounted at once, fields written after it survive a crash and the purge', () => {
  const path = join(tempDir('blobasaur-delns-'), 'shard-0.db');
  let shard = new Shard(0, path, SQLITE);
  const rows: ShardWrite[] = [];
  for (let i = 0; i < 5000; i++) rows.push(set('h', `f${i}`, 'x'.repeat(i % 50)));
  for (let i = 0; i < 10; i++) rows.push(set('other', `g${i}`, 'y'));
  assert.deepEqual(shard.applyGroups([rows]), [null]);
  const before = shard.counts();
  assert.equal(before.fields, 5010);

  assert.deepEqual(shard.applyGroups([[delns('h')]]), [null]);
  // Counted and read as gone before a single row is deleted.
  assert.equal(shard.counts().fields, 10);
  assert.equal(shard.nsFieldCount(b('h')), 0);
  assert.equal(shard.nsGet(b('h'), b('f7'), Date.now()), undefined);
  assert.deepEqual(fields(shard, 'h'), []);
  assert.equal(shard.nsLiveCount(b('h'), Date.now()), 0);
  assert.equal(audit(path).rows, 5010);

  // Written after the DEL: one field of an old name, one new.
  assert.deepEqual(shard.applyGroups([[set('h', 'f7', 'new')], [set('h', 'later', 'z')]]), [null, null]);
  assert.deepEqual(fields(shard, 'h'), ['f7=new', 'later=z']);
  assert.equal(shard.nsFieldCount(b('h')), 2);
  assert.equal(shard.counts().fields, 12);
  // As a kill -9 would leave it: closed with no purge step run.
  shard.close();

  shard = new Shard(0, path, SQLITE);
  try {
    assert.deepEqual(fields(shard, 'h'), ['f7=new', 'later=z']);
    assert.equal(shard.counts().fields, 12);
    assert.equal(shard.hasPurgeWork(), true);
    const steps = purgeAll(shard);
    assert.ok(steps >= 10, `5000 rows went in ${steps} steps of at most 500`);
    assert.deepEqual(fields(shard, 'h'), ['f7=new', 'later=z']);
    assert.equal(fields(shard, 'other').length, 10);
    const a = audit(path);
    assert.equal(a.rows, 12);
    assert.equal(a.tombstones, 0);
    assert.deepEqual(a.stats, a.actual);
    assert.deepEqual(shard.counts().fields, 12);
  } finally {
    shard.close();
  }
});

test('a field written after the DEL keeps a rowid above the tombstone even when the rows above it are deleted', () => {
  const path = join(tempDir('blobasaur-delns-rowid-'), 'shard-0.db');
  const shard = new Shard(0, path, SQLITE);
  try {
    const rows: ShardWrite[] = [];
    for (let i = 0; i < 2000; i++) rows.push(set('h', `f${i}`, 'x'));
    // The table's largest rowids belong to another namespace, deleted after the DEL: SQLite
    // would hand a new row max(rowid) + 1, under the tombstone.
    for (let i = 0; i < 20; i++) rows.push(set('top', `t${i}`, 'y'));
    assert.deepEqual(shard.applyGroups([rows]), [null]);
    assert.deepEqual(shard.applyGroups([[delns('h')]]), [null]);
    assert.deepEqual(shard.applyGroups([[delns('top')]]), [null]); // 20 fields: deleted at once
    assert.deepEqual(shard.applyGroups([[{ kind: 'purge', limit: 500 }]]), [null]);
    assert.deepEqual(shard.applyGroups([[set('h', 'f1999', 'kept'), set('h', 'new', 'kept')]]), [null]);
    purgeAll(shard);
    assert.deepEqual(fields(shard, 'h'), ['f1999=kept', 'new=kept']);
    assert.deepEqual(fields(shard, 'top'), []);
    const a = audit(path);
    assert.equal(a.rows, 2);
    assert.deepEqual(a.stats, a.actual);
  } finally {
    shard.close();
  }
});

test('a second DEL during the purge takes the fields written since; FLUSHALL takes the tombstones with the rows', () => {
  const path = join(tempDir('blobasaur-delns-twice-'), 'shard-0.db');
  const shard = new Shard(0, path, SQLITE);
  try {
    const rows: ShardWrite[] = [];
    for (let i = 0; i < 3000; i++) rows.push(set('h', `f${i}`, 'x'));
    assert.deepEqual(shard.applyGroups([rows, [delns('h')], [set('h', 'a', '1'), set('h', 'b', '2')]]), [null, null, null]);
    assert.deepEqual(fields(shard, 'h'), ['a=1', 'b=2']);
    // Both in one transaction with a write after them: only 'c' is left.
    assert.deepEqual(shard.applyGroups([[delns('h')], [set('h', 'c', '3')]]), [null, null]);
    assert.deepEqual(fields(shard, 'h'), ['c=3']);
    assert.equal(shard.counts().fields, 1);
    purgeAll(shard);
    assert.deepEqual(fields(shard, 'h'), ['c=3']);
    assert.deepEqual(audit(path).stats, audit(path).actual);

    const more: ShardWrite[] = [];
    for (let i = 0; i < 3000; i++) more.push(set('h', `f${i}`, 'x'));
    assert.deepEqual(shard.applyGroups([more, [delns('h')], [{ kind: 'flush' }], [set('h', 'd', '4')]]), [null, null, null, null]);
    assert.deepEqual(fields(shard, 'h'), ['d=4']);
    assert.equal(audit(path).tombstones, 0);
    purgeAll(shard);
    assert.deepEqual(fields(shard, 'h'), ['d=4']);
    const a = audit(path);
    assert.equal(a.rows, 1);
    assert.deepEqual(a.stats, a.actual);
  } finally {
    shard.close();
  }
});

test('the purge finds a namespace\'s rows by its primary key, not by a scan of the table', () => {
  const path = join(tempDir('blobasaur-delns-plan-'), 'shard-0.db');
  const shard = new Shard(0, path, SQLITE);
  shard.close();
  const db = new Database(path, { readonly: true });
  try {
    const plan = db
      .prepare('EXPLAIN QUERY PLAN SELECT rowid AS id, coalesce(blob_stored, length(data)) AS n FROM ns_blobs WHERE namespace = ? AND rowid <= ? LIMIT ?')
      .all(b('h'), 1, 1) as { detail: string }[];
    assert.match(plan.map((p) => p.detail).join('; '), /USING INDEX sqlite_autoindex_ns_blobs_1 \(namespace=\?\)/);
  } finally {
    db.close();
  }
});

test('repair of a shard with an unfinished DEL purge does not bring the deleted fields back', () => {
  const path = join(tempDir('blobasaur-delns-repair-'), 'shard-0.db');
  let shard = new Shard(0, path, SQLITE);
  const rows: ShardWrite[] = [];
  for (let i = 0; i < 3000; i++) rows.push(set('h', `f${i}`, 'x'));
  rows.push(set(null, 'plain', 'p'));
  assert.deepEqual(shard.applyGroups([rows]), [null]);
  assert.deepEqual(shard.applyGroups([[delns('h')]]), [null]);
  assert.deepEqual(shard.applyGroups([[set('h', 'f5', 'after')]]), [null]);
  shard.close();
  assert.equal(audit(path).tombstones, 1);

  const r = repairShardFile(0, path);
  assert.equal(r.repaired, true);
  assert.equal(r.lost, 0, `lost: ${r.lostKeys.join(', ')}`);
  assert.equal(r.saved, 2);
  shard = new Shard(0, path, SQLITE);
  try {
    assert.deepEqual(fields(shard, 'h'), ['f5=after']);
    assert.equal(shard.counts().fields, 1);
    assert.equal(audit(path).rows, 1);
  } finally {
    shard.close();
  }
});

test('up to 100 fields in a shard are deleted at once, more get a tombstone (a DEL\'s four commits share one turn)', () => {
  const path = join(tempDir('blobasaur-delns-at-once-'), 'shard-0.db');
  const shard = new Shard(0, path, SQLITE);
  try {
    const rows: ShardWrite[] = [];
    for (let i = 0; i < 100; i++) rows.push(set('small', `f${i}`, 'x'));
    for (let i = 0; i < 101; i++) rows.push(set('large', `f${i}`, 'x'));
    assert.deepEqual(shard.applyGroups([rows]), [null]);
    assert.deepEqual(shard.applyGroups([[delns('small')]]), [null]);
    assert.equal(audit(path).rows, 101);
    assert.equal(audit(path).tombstones, 0);
    assert.deepEqual(shard.applyGroups([[delns('large')]]), [null]);
    assert.deepEqual({ rows: audit(path).rows, tombstones: audit(path).tombstones }, { rows: 101, tombstones: 1 });
    assert.equal(shard.counts().fields, 0);
    purgeAll(shard);
    assert.deepEqual({ rows: audit(path).rows, tombstones: audit(path).tombstones }, { rows: 0, tombstones: 0 });
  } finally {
    shard.close();
  }
});
