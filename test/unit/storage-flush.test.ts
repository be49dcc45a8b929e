/**
 * FLUSH sets a shard's tables aside in one transaction and the store purges them afterwards in
 * steps: a shard file left between the two (a crash after the flush's commit) opens empty, and
 * the purge finishes after the restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Shard, type ShardWrite } from '../../src/storage/shard.js';
import { Store } from '../../src/storage/store.js';
import { Keyspace } from '../../src/storage/keyspace.js';
import { tempDir } from '../helpers/servers.js';
import { shardSet } from '../helpers/shard-writes.js';

const SQLITE = { synchronous: 'NORMAL', cache_size_mb: 4, busy_timeout_ms: 1000, mmap_size_mb: 0 } as const;

function open(dataDir: string, numShards: number): Store {
  return Store.open({
    dataDir,
    numShards,
    asyncWrite: false,
    batchSize: 1000,
    batchTimeoutMs: 0,
    inflightCapacity: 10_000,
    inflightMaxBytes: 64 * 1024 * 1024,
    compression: null,
    sqlite: SQLITE,
    sweepIntervalMs: 0,
    onWriteFailure: () => {},
  });
}

const b = (s: string): Buffer => Buffer.from(s);
const set = shardSet;

function flushedTables(path: string): string[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB '*_flushed_*' ORDER BY name").pluck().all() as string[];
  } finally {
    db.close();
  }
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a shard left flushed but not purged (a crash after the flush) opens empty, and the purge finishes after the restart', async () => {
  const dataDir = tempDir('blobasaur-flush-');
  // One shard written and flushed twice directly, as a crash after both commits would leave it:
  // no purge ever ran.
  const shard = new Shard(0, join(dataDir, 'shard-0.db'), SQLITE);
  const rows: ShardWrite[] = [];
  for (let i = 0; i < 5000; i++) rows.push(set(null, `k${i}`, 'v'.repeat(50)), set('h', `f${i}`, 'x'));
  assert.deepEqual(shard.applyGroups([rows]), [null]);
  assert.deepEqual(shard.applyGroups([[{ kind: 'flush' }]]), [null]);
  assert.deepEqual(shard.applyGroups([[set(null, 'between', '1')], [{ kind: 'flush' }], [set(null, 'kept', 'yes'), set('h2', 'f', 'y')]]), [null, null, null]);
  assert.deepEqual(shard.counts(), { keys: 1, expires: 0, fields: 1, logical: 4, stored: 4 });
  shard.close();
  assert.deepEqual(flushedTables(join(dataDir, 'shard-0.db')), [
    'blobs_flushed_1',
    'blobs_flushed_2',
    'ns_blobs_flushed_1',
    'ns_blobs_flushed_2',
    'ns_counts_flushed_1',
    'ns_counts_flushed_2',
  ]);

  const store = open(dataDir, 1);
  try {
    const ks = new Keyspace(store);
    const now = Date.now();
    // Nothing flushed comes back, before the purge has run a single step.
    assert.equal(store.hasPurgeWork(), true);
    assert.equal(ks.get(null, b('k1'), now), null);
    assert.equal(ks.get(null, b('between'), now), null);
    assert.equal(ks.namespaceExists(b('h'), now), false);
    assert.equal((ks.get(null, b('kept'), now) as Buffer).toString(), 'yes');
    assert.equal(await ks.dbsize(), 2);
    await until(() => !store.hasPurgeWork(), 20_000, 'the purge');
    assert.equal(await ks.dbsize(), 2);
    assert.equal(ks.namespaceLength(b('h2'), Date.now()), 1);
  } finally {
    await store.close();
  }
  assert.deepEqual(flushedTables(join(dataDir, 'shard-0.db')), []);
  const db = new Database(join(dataDir, 'shard-0.db'), { readonly: true });
  try {
    // The new tables kept every index and trigger of the old ones.
    const names = db.prepare("SELECT type || ' ' || name FROM sqlite_master WHERE type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY 1").pluck().all();
    assert.ok(names.includes('index blobs_slot') && names.includes('trigger ns_blobs_count_insert') && names.includes('trigger ns_counts_vanish'), String(names));
    assert.equal(db.prepare('SELECT count(*) FROM blobs').pluck().get(), 1);
  } finally {
    db.close();
  }
});

test('FLUSHALL counts are right at once, namespaces spread over shards included, and writes after it count again', async () => {
  const dataDir = tempDir('blobasaur-flush-');
  const store = open(dataDir, 4);
  try {
    const ks = new Keyspace(store);
    const now = Date.now();
    for (let i = 0; i < 300; i++) {
      ks.set(null, b(`k${i}`), b('v'), 'clear', now);
      ks.set(b(`h${i % 7}`), b(`f${i}`), b('v'), 'clear', now);
    }
    assert.equal(await ks.dbsize(), 307);
    const ack = ks.flushAll(now);
    // Visible at once, before the commit.
    assert.equal(ks.exists(null, b('k1'), now), false);
    assert.equal(ks.namespaceLength(b('h1'), now), 0);
    ks.set(b('h1'), b('again'), b('v'), 'clear', now);
    await ack;
    assert.equal(await ks.dbsize(), 1);
    assert.equal(ks.namespaceLength(b('h1'), Date.now()), 1);
    await until(() => !store.hasPurgeWork(), 20_000, 'the purge');
    assert.equal(await ks.dbsize(), 1);
    assert.equal(ks.countExpiring(Date.now()), 0);
  } finally {
    await store.close();
  }
});

test('the purge commits one shard\'s step per turn of the event loop, after a FLUSHALL and after a DEL of a namespace', async () => {
  const dataDir = tempDir('blobasaur-purge-turns-');
  const store = open(dataDir, 4);
  // Each purge commit notes whether another one ran in the same turn: a marker set by a commit is
  // cleared by an immediate that runs in the next turn (it is queued during this one's check phase).
  let inTurn = false;
  let commits = 0;
  let sharedTurns = 0;
  for (const q of store.queues) {
    const apply = q.shard.applyGroups.bind(q.shard);
    q.shard.applyGroups = (groups) => {
      if (groups.some((g) => g.some((w) => w.kind === 'purge'))) {
        commits++;
        if (inTurn) sharedTurns++;
        inTurn = true;
        setImmediate(() => (inTurn = false));
      }
      return apply(groups);
    };
  }
  try {
    const ks = new Keyspace(store);
    // Over 100 fields per shard: the DEL leaves a tombstone and the rows to the purge.
    const fill = async (ns: Buffer | null, n: number): Promise<void> => {
      const now = Date.now();
      for (let i = 0; i < n; i += 1000) await Promise.all(Array.from({ length: 1000 }, (_, j) => ks.set(ns, b(`f${i + j}`), b('v'), 'clear', now)));
    };
    await fill(null, 4000);
    await ks.flushAll(Date.now());
    await until(() => !store.hasPurgeWork(), 20_000, 'the purge of FLUSHALL');
    const afterFlush = commits;
    await fill(b('h'), 8000);
    await ks.deleteNamespace(b('h'));
    await until(() => !store.hasPurgeWork(), 20_000, 'the purge of the DEL');
    assert.ok(afterFlush >= 4, `purge commits after FLUSHALL: ${afterFlush}`);
    assert.ok(commits - afterFlush >= 4, `purge commits after DEL: ${commits - afterFlush}`);
    assert.equal(sharedTurns, 0);
    assert.equal(await ks.dbsize(), 0);
  } finally {
    await store.close();
  }
});
