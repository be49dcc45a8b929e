/**
 * The reads of a namespace snapshot (HGETALL's steps, HRANDFIELD's picks) run on the event loop:
 * each must be a few index seeks, never a scan of ns_blobs, or one pick costs milliseconds per
 * 50,000 rows of the shard.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Shard, type ShardWrite } from '../../src/storage/shard.js';
import { SNAPSHOT_SQL, SnapshotConnection } from '../../src/storage/snapshot.js';
import { tempDir } from '../helpers/servers.js';
import { shardSet } from '../helpers/shard-writes.js';

const SQLITE = { synchronous: 'NORMAL', cache_size_mb: 4, busy_timeout_ms: 1000, mmap_size_mb: 0 } as const;

const set = (ns: string, key: string): ShardWrite => shardSet(ns, key, 'v');

test('every snapshot read is planned as index searches, none as a scan of a table', () => {
  const path = join(tempDir('blobasaur-snapshot-plan-'), 'shard-0.db');
  new Shard(0, path, SQLITE).close();
  const db = new Database(path, { readonly: true });
  try {
    for (const [name, sql] of Object.entries(SNAPSHOT_SQL)) {
      const params = (sql.match(/\?/g) ?? []).map(() => 1);
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((p) => p.detail);
      const scans = plan.filter((d) => d.startsWith('SCAN ') && d !== 'SCAN CONSTANT ROW');
      assert.deepEqual(scans, [], `${name}: ${plan.join('; ')}`);
    }
  } finally {
    db.close();
  }
});

test('the rowid range of a snapshot is the table\'s first and last rowid, and null when it is empty', () => {
  const path = join(tempDir('blobasaur-snapshot-rowids-'), 'shard-0.db');
  const shard = new Shard(0, path, SQLITE);
  const snap = new SnapshotConnection(path, SQLITE);
  try {
    snap.begin();
    assert.equal(snap.rowidRange(), null);
    snap.end();
    shard.applyGroups([Array.from({ length: 50 }, (_, i) => set(i % 2 === 0 ? 'a' : 'b', `f${i}`))]);
    shard.applyGroups([[{ kind: 'del', ns: Buffer.from('a'), key: Buffer.from('f0') }]]);
    snap.begin();
    assert.deepEqual(snap.rowidRange(), { low: 2, high: 50 });
    snap.end();
  } finally {
    snap.close();
    shard.close();
  }
});
