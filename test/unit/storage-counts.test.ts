/**
 * Maintained counts (schema migration 2): DBSIZE, INFO keyspace and the byte totals come from
 * counts that triggers keep in each shard, in the same transaction as every write. These tests run
 * a seeded mix of every kind of write — overwrites, expiries, deletes, namespace deletes, flushes,
 * sweeps inline and on the maintenance thread — and after each round compare the counts with a
 * recount of the rows, read from the shard files through a separate connection; then reopen the
 * store and compare again.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Store, type StoreOptions } from '../../src/storage/store.js';
import { Keyspace } from '../../src/storage/keyspace.js';
import { shardPath } from '../../src/storage/schema.js';

const SHARDS = 3;
const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const dirs: string[] = [];
const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => {});
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function open(dataDir: string, over: Partial<StoreOptions> = {}): { store: Store; ks: Keyspace } {
  const store = Store.open({
    dataDir,
    numShards: SHARDS,
    asyncWrite: false,
    batchSize: 7,
    batchTimeoutMs: 0,
    inflightCapacity: 10_000,
    inflightMaxBytes: 1 << 30,
    compression: null,
    sqlite: { synchronous: 'NORMAL', cache_size_mb: 8, busy_timeout_ms: 1000, mmap_size_mb: 0 },
    sweepIntervalMs: 0,
    onWriteFailure: () => {},
    ...over,
  });
  stores.push(store);
  return { store, ks: new Keyspace(store) };
}

/** The truth, counted row by row from the files. */
function recount(dataDir: string): { dbsize: number; expires: number; rows: number; logical: number; stored: number } {
  let keys = 0;
  let expires = 0;
  let rows = 0;
  let logical = 0;
  let stored = 0;
  const namespaces = new Set<string>();
  for (let id = 0; id < SHARDS; id++) {
    const db = new Database(shardPath(dataDir, id), { readonly: true });
    try {
      keys += db.prepare('SELECT count(*) FROM blobs').pluck().get() as number;
      expires += db.prepare('SELECT count(*) FROM blobs WHERE expires_at IS NOT NULL').pluck().get() as number;
      for (const t of ['blobs', 'ns_blobs']) {
        const r = db.prepare(`SELECT count(*) AS n, coalesce(sum(size), 0) AS l, coalesce(sum(length(data)), 0) AS s FROM ${t}`).get() as {
          n: number;
          l: number;
          s: number;
        };
        rows += r.n;
        logical += r.l;
        stored += r.s;
      }
      for (const ns of db.prepare('SELECT DISTINCT namespace FROM ns_blobs').pluck().all() as Buffer[]) namespaces.add(ns.toString('latin1'));
    } finally {
      db.close();
    }
  }
  return { dbsize: keys + namespaces.size, expires, rows, logical, stored };
}

async function counted(store: Store): Promise<ReturnType<typeof recount>> {
  const dbsize = await store.dbsize();
  const t = store.byteTotals();
  return { dbsize, expires: store.countExpiring(), rows: t.rows, logical: t.logical, stored: t.stored };
}

/** A small deterministic generator, so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

async function mixedRounds(store: Store, ks: Keyspace, dataDir: string, seed: number, rounds: number): Promise<void> {
  const rand = rng(seed);
  const pick = (n: number): number => Math.floor(rand() * n);
  for (let round = 0; round < rounds; round++) {
    const acks: Promise<void>[] = [];
    const add = (a: Promise<void> | undefined): void => {
      if (a !== undefined) acks.push(a.catch(() => {}));
    };
    for (let i = 0; i < 150; i++) {
      const now = Date.now();
      const key = b(`k${pick(40)}`);
      const ns = b(`ns${pick(6)}`);
      const field = b(`f${pick(25)}`);
      const value = Buffer.alloc(pick(300), 97 + pick(26));
      switch (pick(12)) {
        case 0:
        case 1:
          add(ks.set(null, key, value, 'clear', now));
          break;
        case 2:
          // Expired at once, or far in the future: never in between, so the recount is stable.
          add(ks.set(null, key, value, { at: rand() < 0.5 ? now - 1 : now + 3_600_000 }, now));
          break;
        case 3:
          add(ks.delete(null, key, now).ack);
          break;
        case 4:
          if (ks.exists(null, key, now)) add(ks.setExpiry(null, key, rand() < 0.5 ? null : now + 3_600_000, now));
          break;
        case 5:
        case 6:
          add(ks.set(ns, field, value, 'clear', now));
          break;
        case 7:
          add(ks.delete(ns, field, now).ack);
          break;
        case 8:
          if (rand() < 0.2) add(ks.deleteNamespace(ns));
          break;
        case 9:
          add(ks.update(null, key, now, (old) => Buffer.concat([old ?? Buffer.alloc(0), value.subarray(0, 10)]), 'keep').ack);
          break;
        case 10:
          if (rand() < 0.1) {
            const moved = ks.rename(key, b(`k${pick(40)}`), now, false);
            if (moved.done) add(moved.ack);
          }
          break;
        case 11:
          if (rand() < 0.02) add(ks.flushAll(now));
          break;
      }
    }
    await Promise.all(acks);
    assert.deepEqual(await counted(store), recount(dataDir), `seed ${seed}, round ${round}`);
  }
}

for (const worker of [false, true]) {
  test(`counts equal a recount of the rows after every kind of write, and after a restart (maintenance thread ${worker ? 'on' : 'off'})`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'blobasaur-counts-'));
    dirs.push(dir);
    const { store, ks } = open(dir, { maintenanceWorker: worker });
    await mixedRounds(store, ks, dir, worker ? 7 : 11, 12);
    const before = await counted(store);
    await store.close();
    const again = open(dir, { maintenanceWorker: worker });
    assert.deepEqual(await counted(again.store), before, 'the counts are read back from the files, not rebuilt');
    await mixedRounds(again.store, again.ks, dir, worker ? 8 : 12, 4);
  });
}

test('a namespace whose fields span shards counts once, until its last field in the last shard goes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'blobasaur-counts-'));
  dirs.push(dir);
  const { store, ks } = open(dir);
  const fields = Array.from({ length: 12 }, (_, i) => b(`field-${i}`));
  assert.equal(new Set(fields.map((f) => store.shardOf(f))).size, SHARDS, 'the fields land on every shard');
  const now = Date.now();
  await Promise.all(fields.map((f) => ks.set(b('h'), f, b('v'), 'clear', now)));
  assert.equal(await store.dbsize(), 1);
  for (const f of fields.slice(0, -1)) await ks.delete(b('h'), f, now).ack;
  assert.equal(await store.dbsize(), 1);
  await ks.delete(b('h'), fields[fields.length - 1], now).ack;
  assert.equal(await store.dbsize(), 0);
});

test('DBSIZE reclaims what has expired before counting, as Redis does for a key it touches; INFO keyspace expires follows', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'blobasaur-counts-'));
  dirs.push(dir);
  const { store, ks } = open(dir);
  const now = Date.now();
  await Promise.all([
    // Two seconds: the first DBSIZE must come before it, even on a busy machine.
    ks.set(null, b('gone'), b('v'), { at: now + 2000 }, now),
    ks.set(null, b('stays'), b('v'), { at: now + 3_600_000 }, now),
    ks.set(b('h'), b('f'), b('v'), 'clear', now),
  ]);
  assert.equal(await store.dbsize(), 3);
  assert.equal(store.countExpiring(), 2);
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, now + 2050 - Date.now())));
  // The sweeper is off in this store: DBSIZE itself had the expired row reclaimed.
  assert.equal(await store.dbsize(), 2);
  assert.equal(store.countExpiring(), 1);
  assert.equal(store.sweptRows, 1);
  assert.deepEqual(await counted(store), recount(dir));
});
