import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Store, type Ack, type StoreOptions } from '../../src/storage/store.js';
import { Keyspace } from '../../src/storage/keyspace.js';
import type { PendingValue } from '../../src/storage/overlay.js';
import { LAYOUT_FILE, LayoutError, checkLayout } from '../../src/storage/layout.js';
import type { PendingWrite } from '../../src/storage/write-queue.js';
import { shardPath } from '../../src/storage/schema.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const str = (v: Buffer | null | Promise<Buffer>): string | null => {
  assert.ok(!(v instanceof Promise), 'uncompressed values decode synchronously');
  return v === null ? null : v.toString('latin1');
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const dirs: string[] = [];
const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => {});
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'blobasaur-store-'));
  dirs.push(d);
  return d;
}

/** The store with the keyspace API's single-key calls, at the current time, as these tests use them. */
type KeyStore = Store & {
  get(key: Buffer): PendingValue | null;
  exists(key: Buffer): boolean;
  set(key: Buffer, value: PendingValue, expiresAt?: number | null): Ack;
  delete(key: Buffer): Ack;
  hget(ns: Buffer, field: Buffer): PendingValue | null;
  hexists(ns: Buffer, field: Buffer): boolean;
  hset(ns: Buffer, field: Buffer, value: PendingValue): Ack;
  hdelete(ns: Buffer, field: Buffer): Ack;
};

function withKeyspace(store: Store): KeyStore {
  const ks = new Keyspace(store);
  return Object.assign(store, {
    get: (key: Buffer) => ks.get(null, key, Date.now()),
    exists: (key: Buffer) => ks.exists(null, key, Date.now()),
    set: (key: Buffer, value: PendingValue, expiresAt: number | null = null) =>
      ks.set(null, key, value, expiresAt === null ? 'clear' : { at: expiresAt }, Date.now()),
    delete: (key: Buffer) => ks.delete(null, key, Date.now()).ack,
    hget: (ns: Buffer, field: Buffer) => ks.get(ns, field, Date.now()),
    hexists: (ns: Buffer, field: Buffer) => ks.exists(ns, field, Date.now()),
    hset: (ns: Buffer, field: Buffer, value: PendingValue) => ks.set(ns, field, value, 'clear', Date.now()),
    hdelete: (ns: Buffer, field: Buffer) => ks.delete(ns, field, Date.now()).ack,
  });
}

interface Opened {
  store: KeyStore;
  failures: { err: Error; write: PendingWrite; shard: number }[];
}

function open(dataDir: string, over: Partial<StoreOptions> = {}): Opened {
  const failures: Opened['failures'] = [];
  const store = Store.open({
    dataDir,
    numShards: 4,
    asyncWrite: false,
    batchSize: 100,
    batchTimeoutMs: 0,
    inflightCapacity: 10_000,
    inflightMaxBytes: 1 << 30,
    compression: null,
    sqlite: { synchronous: 'NORMAL', cache_size_mb: 8, busy_timeout_ms: 1000, mmap_size_mb: 0 },
    onWriteFailure: (err, write, shard) => failures.push({ err, write, shard }),
    ...over,
  });
  stores.push(store);
  return { store: withKeyspace(store), failures };
}

test('set/get/exists/delete: pending and committed reads', async () => {
  const { store } = open(tempDir());
  assert.equal(store.numShards, 4);
  assert.equal(str(store.get(b('k'))), null);
  assert.equal(store.exists(b('k')), false);
  const ack = store.set(b('k'), b('v1'));
  assert.ok(ack instanceof Promise);
  // Pending: visible at once.
  assert.equal(str(store.get(b('k'))), 'v1');
  assert.equal(store.exists(b('k')), true);
  assert.equal(store.inflightOps, 1);
  await ack;
  assert.equal(store.inflightOps, 0);
  // Committed: read from SQLite.
  assert.equal(store.queues[store.shardOf(b('k'))].overlay.size, 0);
  assert.equal(str(store.get(b('k'))), 'v1');
  assert.equal(store.exists(b('k')), true);
  const del = store.delete(b('k'));
  assert.equal(str(store.get(b('k'))), null);
  assert.equal(store.exists(b('k')), false);
  await del;
  assert.equal(str(store.get(b('k'))), null);
  assert.equal(store.exists(b('k')), false);
  // Empty values are values.
  await store.set(b('empty'), b(''));
  assert.equal(str(store.get(b('empty'))), '');
  assert.equal(store.exists(b('empty')), true);
});

test('a pending delete hides the committed value; a pending overwrite shows the new one', async () => {
  const { store } = open(tempDir());
  await store.set(b('k'), b('committed'));
  const del = store.delete(b('k'));
  assert.equal(str(store.get(b('k'))), null);
  assert.equal(store.exists(b('k')), false);
  const set = store.set(b('k'), b('again'));
  assert.equal(str(store.get(b('k'))), 'again');
  await Promise.all([del, set]);
  assert.equal(str(store.get(b('k'))), 'again');
});

test('hset/hget/hexists/hdelete: pending and committed reads', async () => {
  const { store } = open(tempDir());
  const ns = b('user:1');
  assert.equal(str(store.hget(ns, b('name'))), null);
  assert.equal(store.hexists(ns, b('name')), false);
  const a1 = store.hset(ns, b('name'), b('ada'));
  const a2 = store.hset(ns, b('lang'), b('en'));
  assert.equal(str(store.hget(ns, b('name'))), 'ada');
  assert.equal(store.hexists(ns, b('lang')), true);
  assert.equal(store.hexists(b('user:2'), b('name')), false);
  await Promise.all([a1, a2]);
  assert.equal(str(store.hget(ns, b('name'))), 'ada');
  assert.equal(str(store.hget(ns, b('lang'))), 'en');
  assert.equal(str(store.hget(b('user:2'), b('name'))), null);
  const d = store.hdelete(ns, b('name'));
  assert.equal(str(store.hget(ns, b('name'))), null);
  assert.equal(store.hexists(ns, b('name')), false);
  assert.equal(str(store.hget(ns, b('lang'))), 'en');
  await d;
  assert.equal(str(store.hget(ns, b('name'))), null);
  assert.equal(store.hexists(ns, b('name')), false);
  assert.equal(store.hexists(ns, b('lang')), true);
});

test('a plain key "x" and a namespace "x" coexist', async () => {
  const { store } = open(tempDir());
  const acks = [store.set(b('x'), b('plain')), store.hset(b('x'), b('x'), b('nested')), store.hset(b('x'), b('f'), b('field'))];
  assert.equal(str(store.get(b('x'))), 'plain');
  assert.equal(str(store.hget(b('x'), b('x'))), 'nested');
  await Promise.all(acks);
  assert.equal(str(store.get(b('x'))), 'plain');
  assert.equal(str(store.get(b('f'))), null);
  assert.equal(str(store.hget(b('x'), b('x'))), 'nested');
  assert.equal(str(store.hget(b('x'), b('f'))), 'field');
  await store.delete(b('x'));
  assert.equal(str(store.get(b('x'))), null);
  assert.equal(str(store.hget(b('x'), b('x'))), 'nested');
  await store.hdelete(b('x'), b('x'));
  assert.equal(str(store.hget(b('x'), b('x'))), null);
  assert.equal(str(store.hget(b('x'), b('f'))), 'field');
});

test('flushAll hides everything at once and after commit; later writes survive', async () => {
  const { store } = open(tempDir());
  const keys = Array.from({ length: 40 }, (_, i) => b(`k${i}`));
  await Promise.all(keys.map((k) => store.set(k, b('v'))));
  await store.hset(b('ns'), b('f'), b('v'));
  // Spread over every shard, so the flush has work everywhere.
  assert.equal(new Set(keys.map((k) => store.shardOf(k))).size, 4);
  const pendingSet = store.set(b('pending'), b('p'));
  const flush = store.flushAll();
  assert.ok(flush instanceof Promise);
  for (const k of [...keys, b('pending')]) {
    assert.equal(str(store.get(k)), null);
    assert.equal(store.exists(k), false);
  }
  assert.equal(str(store.hget(b('ns'), b('f'))), null);
  const after = store.set(b('after'), b('a'));
  assert.equal(str(store.get(b('after'))), 'a');
  await Promise.all([pendingSet, flush, after]);
  for (const k of [...keys, b('pending')]) assert.equal(str(store.get(k)), null);
  assert.equal(str(store.hget(b('ns'), b('f'))), null);
  assert.equal(str(store.get(b('after'))), 'a');
  assert.equal(await store.dbsize(), 1);
});

test('dbsize counts plain keys plus distinct namespaces', async () => {
  const { store } = open(tempDir());
  assert.equal(await store.dbsize(), 0);
  store.set(b('a'), b('1'));
  store.set(b('b'), b('1'));
  store.set(b('x'), b('1'));
  // Namespace "x" (also a plain key), with fields that land on several shards.
  const fields = Array.from({ length: 20 }, (_, i) => b(`f${i}`));
  assert.ok(new Set(fields.map((f) => store.shardOf(f))).size > 1);
  for (const f of fields) store.hset(b('x'), f, b('1'));
  store.hset(b('y'), b('f0'), b('1'));
  // dbsize waits for the pending writes itself.
  assert.equal(await store.dbsize(), 5);
  await store.delete(b('a'));
  await store.hdelete(b('y'), b('f0'));
  assert.equal(await store.dbsize(), 3);
  // Expired keys do not count.
  await store.set(b('ttl'), b('1'), Date.now() - 1);
  assert.equal(await store.dbsize(), 3);
  assert.equal(str(store.get(b('ttl'))), null);
});

test('expiry: a pending or committed value past its expiry reads as absent', async () => {
  const { store } = open(tempDir());
  await store.set(b('k'), b('live'));
  const ack = store.set(b('k'), b('dead'), Date.now() - 1);
  assert.equal(str(store.get(b('k'))), null);
  assert.equal(store.exists(b('k')), false);
  await ack;
  assert.equal(str(store.get(b('k'))), null);
  await store.set(b('soon'), b('v'), Date.now() + 60_000);
  assert.equal(str(store.get(b('soon'))), 'v');
});

test('row metadata: version 0 on create, +1 per overwrite, created_at kept, updated_at moves', async () => {
  const { store } = open(tempDir());
  const key = b('meta');
  const shard = store.queues[store.shardOf(key)].shard;
  assert.equal(shard.meta(key), undefined);
  const t0 = Date.now();
  await store.set(key, b('1'));
  const m0 = shard.meta(key)!;
  assert.equal(m0.version, 0);
  assert.equal(m0.expires_at, null);
  assert.equal(m0.created_at, m0.updated_at);
  assert.ok(m0.created_at >= t0 && m0.created_at <= Date.now());
  await sleep(5);
  await store.set(key, b('2'));
  const m1 = shard.meta(key)!;
  assert.equal(m1.version, 1);
  assert.equal(m1.created_at, m0.created_at);
  assert.ok(m1.updated_at > m0.updated_at, `${m1.updated_at} > ${m0.updated_at}`);
  await sleep(5);
  const exp = Date.now() + 60_000;
  await store.set(key, b('3'), exp);
  const m2 = shard.meta(key)!;
  assert.equal(m2.version, 2);
  assert.equal(m2.created_at, m0.created_at);
  assert.ok(m2.updated_at > m1.updated_at);
  assert.equal(m2.expires_at, exp);
  // Delete then set starts over.
  await store.delete(key);
  assert.equal(shard.meta(key), undefined);
  await sleep(5);
  await store.set(key, b('4'));
  const m3 = shard.meta(key)!;
  assert.equal(m3.version, 0);
  assert.ok(m3.created_at > m0.created_at);
});

test('row metadata: overwriting an expired row starts a new life', async () => {
  const { store } = open(tempDir());
  const key = b('exp');
  const shard = store.queues[store.shardOf(key)].shard;
  await store.set(key, b('1'));
  await store.set(key, b('2'), Date.now() + 20);
  assert.equal(shard.meta(key)!.version, 1);
  const created = shard.meta(key)!.created_at;
  await sleep(40);
  await store.set(key, b('3'));
  const m = shard.meta(key)!;
  assert.equal(m.version, 0);
  assert.ok(m.created_at > created);
  assert.equal(m.expires_at, null);
});

test('async mode: acks are undefined and reads still see the writes', async () => {
  const { store, failures } = open(tempDir(), { asyncWrite: true });
  assert.equal(store.set(b('k'), b('v')), undefined);
  assert.equal(store.hset(b('ns'), b('f'), b('v')), undefined);
  assert.equal(str(store.get(b('k'))), 'v');
  assert.equal(str(store.hget(b('ns'), b('f'))), 'v');
  assert.equal(store.delete(b('gone')), undefined);
  assert.equal(store.hdelete(b('ns'), b('nope')), undefined);
  assert.equal(store.flushAll(), undefined);
  assert.equal(str(store.get(b('k'))), null);
  assert.equal(store.set(b('k2'), b('v2')), undefined);
  assert.equal(str(store.get(b('k2'))), 'v2');
  await store.drain();
  assert.equal(str(store.get(b('k'))), null);
  assert.equal(str(store.get(b('k2'))), 'v2');
  assert.equal(failures.length, 0);
  assert.equal(await store.dbsize(), 1);
});

test('a write that fails to commit rejects, reports its shard and stops shadowing the stored value', async () => {
  const dir = tempDir();
  const { store, failures } = open(dir);
  const key = b('victim');
  const id = store.shardOf(key);
  await store.set(key, b('old'));
  const peek = new Database(shardPath(dir, id));
  try {
    peek.exec(`CREATE TRIGGER poison BEFORE INSERT ON blobs WHEN NEW.data = X'${b('poison').toString('hex')}'
               BEGIN SELECT RAISE(ABORT, 'boom'); END`);
  } finally {
    peek.close();
  }
  const ack = store.set(key, b('poison'));
  assert.equal(str(store.get(key)), 'poison');
  await assert.rejects(ack!, /boom/);
  assert.equal(str(store.get(key)), 'old');
  assert.equal(failures.length, 1);
  assert.equal(failures[0].shard, id);
  assert.match(failures[0].err.message, /boom/);
  assert.deepEqual((failures[0].write as { key: Buffer }).key, key);
});

test('async mode: a failed write goes to onWriteFailure and the read falls back to SQLite', async () => {
  const dir = tempDir();
  const { store, failures } = open(dir, { asyncWrite: true });
  const key = b('victim');
  const id = store.shardOf(key);
  store.set(key, b('old'));
  await store.drain();
  const peek = new Database(shardPath(dir, id));
  peek.exec(`CREATE TRIGGER poison BEFORE INSERT ON blobs WHEN NEW.data = X'${b('poison').toString('hex')}'
             BEGIN SELECT RAISE(ABORT, 'boom'); END`);
  peek.close();
  assert.equal(store.set(key, b('poison')), undefined);
  assert.equal(str(store.get(key)), 'poison');
  await store.drain();
  assert.equal(str(store.get(key)), 'old');
  assert.equal(failures.length, 1);
  assert.equal(failures[0].shard, id);
});

test('hasRoom and waitForRoom follow the inflight capacity', async () => {
  const { store } = open(tempDir(), { inflightCapacity: 3 });
  store.set(b('a'), b('1'));
  store.set(b('b'), b('1'));
  assert.equal(store.hasRoom, true);
  store.set(b('c'), b('1'));
  assert.equal(store.hasRoom, false);
  assert.equal(store.inflightOps, 3);
  let woke = false;
  const wait = store.waitForRoom().then(() => (woke = true));
  await Promise.resolve();
  assert.equal(woke, false);
  await wait;
  // Shards commit one by one: the first commit to free room wakes the waiter.
  assert.equal(store.hasRoom, true);
  assert.ok(store.inflightOps < 3, `inflight ${store.inflightOps}`);
  await store.drain();
  assert.equal(store.inflightOps, 0);
});

test('a closed and reopened store returns the data', async () => {
  const dir = tempDir();
  const first = open(dir).store;
  const keys = Array.from({ length: 50 }, (_, i) => b(`k${i}`));
  for (const k of keys) first.set(k, b(`v-${k.toString()}`));
  first.hset(b('ns'), b('f'), b('nested'));
  first.set(b('gone'), b('x'));
  first.delete(b('gone'));
  // close() drains what is still pending.
  await first.close();
  await first.close(); // twice is harmless
  const { store } = open(dir);
  for (const k of keys) assert.equal(str(store.get(k)), `v-${k.toString()}`);
  assert.equal(str(store.hget(b('ns'), b('f'))), 'nested');
  assert.equal(str(store.get(b('gone'))), null);
  assert.equal(await store.dbsize(), 51);
});

test('close() also commits writes made while it drains', async () => {
  const dir = tempDir();
  const first = open(dir).store;
  const ack = first.set(b('k1'), b('1'))!;
  // Runs after k1 commits, while close() is still waiting for the drain.
  const chained = ack.then(() => first.set(b('k2'), b('2')));
  await first.close();
  await chained;
  const { store } = open(dir);
  assert.equal(str(store.get(b('k1'))), '1');
  assert.equal(str(store.get(b('k2'))), '2');
});

test('concurrent close() calls both resolve', async () => {
  const { store } = open(tempDir());
  store.set(b('k'), b('v'));
  await Promise.all([store.close(), store.close()]);
});

test('reopening with another shard count throws a LayoutError naming both counts', async () => {
  const dir = tempDir();
  const { store } = open(dir);
  await store.set(b('k'), b('v'));
  await store.close();
  assert.deepEqual(JSON.parse(readFileSync(join(dir, LAYOUT_FILE), 'utf8')), { format: 1, num_shards: 4 });
  assert.throws(
    () => open(dir, { numShards: 8 }),
    (err: Error) => {
      assert.ok(err instanceof LayoutError);
      assert.match(err.message, /holds 4 shards/);
      assert.match(err.message, /num_shards is 8/);
      return true;
    },
  );
  // The same count still opens.
  const again = open(dir).store;
  assert.equal(str(again.get(b('k'))), 'v');
});

test('checkLayout refuses a marker that is not a layout', () => {
  const dir = tempDir();
  for (const text of ['{not json', 'null', '[]', '{"format":2,"num_shards":4}', '{"format":1,"num_shards":"4"}']) {
    writeFileSync(join(dir, LAYOUT_FILE), text);
    assert.throws(() => checkLayout(dir, 4), LayoutError, text);
  }
});

test('when the maintenance worker is lost, the store reports it and sweeps and checkpoints on the event loop again', async () => {
  const problems: { message: string; shard: number | null }[] = [];
  const { store } = open(tempDir(), { numShards: 2, sweepIntervalMs: 20, onMaintenanceProblem: (message, shard) => problems.push({ message, shard }) });
  assert.ok(store.checkpointStats !== null, 'the worker runs by default');
  // Stand-in for a crash of the thread: terminate it from outside.
  const internals = store as unknown as { maintenance: { alive: boolean; worker: { terminate(): Promise<number> } } };
  await internals.maintenance.worker.terminate();
  const deadline = Date.now() + 5000;
  while (problems.length === 0 && Date.now() < deadline) await sleep(10);
  assert.equal(problems.length, 1);
  assert.match(problems[0].message, /exited with code \d+; checkpoints and sweeps run on the event loop again/);
  assert.equal(problems[0].shard, null);
  assert.equal(internals.maintenance.alive, false);
  // Sweeps still happen (inline now), and writes still commit.
  for (let i = 0; i < 200; i++) store.set(b(`gone:${i}`), b('x'), Date.now() + 30);
  await store.set(b('kept'), b('v'));
  while (store.sweptRows < 200 && Date.now() < deadline + 5000) await sleep(20);
  assert.equal(store.sweptRows, 200);
  assert.equal(str(store.get(b('kept'))), 'v');
  assert.equal(await store.dbsize(), 1);
});
