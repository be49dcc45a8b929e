import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Encoded } from '../../src/storage/codecs.js';
import { Shard, type ShardWrite, type SqliteSettings } from '../../src/storage/shard.js';
import { InflightBudget, WriteQueue, type PendingWrite, type WriteQueueOptions } from '../../src/storage/write-queue.js';
import { registerSlotFunction, shardPath } from '../../src/storage/schema.js';
import { ValueBuffers } from '../../src/storage/value-buffers.js';

const SQLITE: SqliteSettings = { synchronous: 'NORMAL', cache_size_mb: 8, busy_timeout_ms: 0, mmap_size_mb: 0 };
const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function setW(key: string, value: string, ns: string | null = null, encoded?: Encoded | Promise<Encoded>): PendingWrite {
  const v = b(value);
  return { kind: 'set', ns: ns === null ? null : b(ns), key: b(key), value: v, encoded: encoded ?? { codec: 0, payload: v }, now: Date.now(), expiresAt: null };
}
const delW = (key: string, ns: string | null = null): PendingWrite => ({ kind: 'del', ns: ns === null ? null : b(ns), key: b(key) });

interface Rig {
  dir: string;
  path: string;
  shard: Shard;
  budget: InflightBudget;
  queue: WriteQueue;
  failures: { err: Error; write: PendingWrite }[];
  commitsSeen: { ops: number; ok: boolean }[];
  /** Sizes of the savepoint groups of every applyGroups call. */
  groupSizes: number[][];
  /** A second connection on the same file. */
  peek: Database.Database;
  stored(key: string): string | undefined;
}

const rigs: Rig[] = [];
afterEach(() => {
  for (const r of rigs.splice(0)) {
    try {
      r.peek.close();
    } catch {}
    try {
      r.shard.close();
    } catch {}
    rmSync(r.dir, { recursive: true, force: true });
  }
});

function rig(opts: Partial<WriteQueueOptions> = {}, budget = new InflightBudget(1_000_000, 1 << 30)): Rig {
  const dir = mkdtempSync(join(tmpdir(), 'blobasaur-wq-'));
  const path = shardPath(dir, 0);
  const shard = new Shard(0, path, SQLITE);
  const failures: Rig['failures'] = [];
  const commitsSeen: Rig['commitsSeen'] = [];
  const groupSizes: number[][] = [];
  const apply = shard.applyGroups.bind(shard);
  shard.applyGroups = (groups: readonly (readonly ShardWrite[])[]) => {
    groupSizes.push(groups.map((g) => g.length));
    return apply(groups);
  };
  const queue = new WriteQueue(shard, budget, {
    batchSize: 1000,
    batchTimeoutMs: 0,
    onFailure: (err, write) => failures.push({ err, write }),
    onCommit: (ops, _ms, ok) => commitsSeen.push({ ops, ok }),
    ...opts,
  });
  const peek = new Database(path);
  registerSlotFunction(peek); // a second writer of rows with a slot index (schema 3)
  peek.pragma('busy_timeout = 0');
  const sel = peek.prepare<[Buffer], Buffer>('SELECT data FROM blobs WHERE key = ?').pluck();
  const r: Rig = {
    dir,
    path,
    shard,
    budget,
    queue,
    failures,
    commitsSeen,
    groupSizes,
    peek,
    stored: (key) => sel.get(b(key))?.toString('latin1'),
  };
  rigs.push(r);
  return r;
}

test('writes pushed in one event-loop turn share one commit and one savepoint group', async () => {
  const r = rig({ batchSize: 1000 });
  const acks: Promise<void>[] = [];
  for (let i = 0; i < 100; i++) acks.push(r.queue.push(setW(`k${i}`, `v${i}`), true)!);
  assert.equal(r.queue.depth, 100);
  assert.equal(r.queue.commits, 0);
  await Promise.all(acks);
  assert.equal(r.queue.commits, 1);
  assert.equal(r.queue.committedOps, 100);
  assert.equal(r.queue.failedOps, 0);
  assert.equal(r.queue.depth, 0);
  assert.deepEqual(r.groupSizes, [[100]]);
  assert.deepEqual(r.commitsSeen, [{ ops: 100, ok: true }]);
  assert.equal(r.queue.overlay.size, 0);
  assert.equal(r.stored('k0'), 'v0');
  assert.equal(r.stored('k99'), 'v99');
  assert.equal(r.peek.prepare('SELECT count(*) FROM blobs').pluck().get(), 100);
});

test('writes from separate ticks and promise continuations of one turn still share one commit', async () => {
  const r = rig();
  const tick = (): Promise<void> => new Promise((res) => process.nextTick(res));
  const acks = [r.queue.push(setW('a', '1'), true)!];
  await tick();
  acks.push(r.queue.push(setW('b', '2'), true)!);
  await Promise.resolve();
  acks.push(r.queue.push(setW('c', '3'), true)!);
  await tick();
  acks.push(r.queue.push(setW('d', '4'), true)!);
  await Promise.all(acks);
  assert.equal(r.queue.commits, 1);
  assert.deepEqual(r.groupSizes, [[4]]);
});

test('the commit runs at the end of the turn, not in a later timer phase', async () => {
  const r = rig();
  r.queue.push(setW('a', '1'), false);
  await turn(); // queued after the queue's own setImmediate
  assert.equal(r.queue.commits, 1);
  assert.equal(r.stored('a'), '1');
});

test('batchSize 1: still one commit, but one savepoint group per write', async () => {
  const r = rig({ batchSize: 1 });
  const acks: Promise<void>[] = [];
  for (let i = 0; i < 100; i++) acks.push(r.queue.push(setW(`k${i}`, `v${i}`), true)!);
  await Promise.all(acks);
  assert.equal(r.queue.commits, 1);
  assert.equal(r.groupSizes.length, 1);
  assert.equal(r.groupSizes[0].length, 100);
  assert.ok(r.groupSizes[0].every((n) => n === 1));
  assert.equal(r.peek.prepare('SELECT count(*) FROM blobs').pluck().get(), 100);
});

test('batchSize 30 splits 100 writes into groups of 30, 30, 30, 10', async () => {
  const r = rig({ batchSize: 30 });
  for (let i = 0; i < 100; i++) r.queue.push(setW(`k${i}`, 'v'), false);
  await r.queue.drain();
  assert.equal(r.queue.commits, 1);
  assert.deepEqual(r.groupSizes, [[30, 30, 30, 10]]);
});

test('writes in different turns get different commits', async () => {
  const r = rig();
  await r.queue.push(setW('a', '1'), true);
  await r.queue.push(setW('b', '2'), true);
  r.queue.push(setW('c', '3'), false);
  r.queue.push(setW('d', '4'), false);
  await r.queue.drain();
  assert.equal(r.queue.commits, 3);
  assert.deepEqual(r.groupSizes, [[1], [1], [2]]);
});

test('an ack resolves only after its commit is visible to another connection', async () => {
  const r = rig();
  let settled = false;
  const ack = r.queue.push(setW('k', 'v'), true)!;
  void ack.then(() => (settled = true));
  // Executed: the overlay shows it. Not committed: another connection does not.
  assert.deepEqual(r.queue.overlay.lookup(null, b('k'), Date.now())?.value, b('v'));
  assert.equal(r.stored('k'), undefined);
  await Promise.resolve();
  assert.equal(settled, false);
  assert.equal(r.stored('k'), undefined);
  await ack;
  assert.equal(settled, true);
  assert.equal(r.stored('k'), 'v');
  assert.equal(r.queue.overlay.lookup(null, b('k'), Date.now()), undefined);
  // Without wantAck there is nothing to wait on.
  assert.equal(r.queue.push(setW('k2', 'v'), false), undefined);
  await r.queue.drain();
  assert.equal(r.stored('k2'), 'v');
});

test('batchTimeoutMs > 0 waits for the timeout when the batch stays short', async () => {
  const r = rig({ batchSize: 10, batchTimeoutMs: 60 });
  const started = performance.now();
  const acks = [0, 1, 2].map((i) => r.queue.push(setW(`k${i}`, 'v'), true)!);
  await turn();
  await sleep(10);
  assert.equal(r.queue.commits, 0);
  assert.equal(r.queue.depth, 3);
  await Promise.all(acks);
  const waited = performance.now() - started;
  assert.ok(waited >= 50, `committed after ${waited.toFixed(1)} ms, expected the 60 ms timeout`);
  assert.equal(r.queue.commits, 1);
  assert.deepEqual(r.groupSizes, [[3]]);
});

test('batchTimeoutMs > 0 commits at once when batchSize writes are queued', async () => {
  const r = rig({ batchSize: 10, batchTimeoutMs: 10_000 });
  for (let i = 0; i < 4; i++) r.queue.push(setW(`a${i}`, 'v'), false);
  await turn();
  assert.equal(r.queue.commits, 0);
  // A later turn fills the batch: no waiting for the 10 s timeout.
  const acks = [];
  for (let i = 0; i < 6; i++) acks.push(r.queue.push(setW(`b${i}`, 'v'), true)!);
  const started = performance.now();
  await Promise.all(acks);
  assert.ok(performance.now() - started < 1000);
  assert.equal(r.queue.commits, 1);
  assert.deepEqual(r.groupSizes, [[10]]);
  assert.equal(r.queue.depth, 0);
});

test('batchTimeoutMs > 0: drain still resolves (after the timeout)', async () => {
  const r = rig({ batchSize: 100, batchTimeoutMs: 30 });
  r.queue.push(setW('k', 'v'), false);
  await r.queue.drain();
  assert.equal(r.queue.commits, 1);
  assert.equal(r.stored('k'), 'v');
});

test('set/del/set of one key in one batch ends with the last value', async () => {
  for (const batchSize of [1000, 1]) {
    const r = rig({ batchSize });
    r.queue.push(setW('k', 'first'), false);
    r.queue.push(delW('k'), false);
    r.queue.push(setW('k', 'last'), false);
    r.queue.push(setW('gone', 'x'), false);
    r.queue.push(setW('gone', 'y'), false);
    r.queue.push(delW('gone'), false);
    assert.deepEqual(r.queue.overlay.lookup(null, b('k'), Date.now())?.value, b('last'));
    assert.equal(r.queue.overlay.lookup(null, b('gone'), Date.now())?.value, null);
    await r.queue.drain();
    assert.equal(r.queue.commits, 1, `batchSize ${batchSize}`);
    assert.equal(r.stored('k'), 'last', `batchSize ${batchSize}`);
    assert.equal(r.stored('gone'), undefined, `batchSize ${batchSize}`);
    assert.equal(r.queue.overlay.size, 0);
  }
});

test('a flush deletes what came before it in the batch and keeps what came after', async () => {
  const r = rig();
  await r.queue.push(setW('old', '1'), true);
  await r.queue.push(setW('f', '1', 'ns'), true);
  r.queue.push(setW('pending', '2'), false);
  const ack = r.queue.push({ kind: 'flush' }, true)!;
  r.queue.push(setW('after', '3'), false);
  const now = Date.now();
  assert.equal(r.queue.overlay.lookup(null, b('old'), now)?.value, null);
  assert.equal(r.queue.overlay.lookup(null, b('pending'), now)?.value, null);
  assert.equal(r.queue.overlay.lookup(b('ns'), b('f'), now)?.value, null);
  assert.deepEqual(r.queue.overlay.lookup(null, b('after'), now)?.value, b('3'));
  await ack;
  await r.queue.drain();
  assert.equal(r.stored('old'), undefined);
  assert.equal(r.stored('pending'), undefined);
  assert.equal(r.stored('after'), '3');
  assert.equal(r.peek.prepare('SELECT count(*) FROM ns_blobs').pluck().get(), 0);
  assert.equal(r.queue.overlay.lookup(null, b('old'), Date.now()), undefined);
});

test('a commit that cannot start (database locked) rejects every ack, calls onFailure and drops the overlay', async () => {
  const r = rig();
  await r.queue.push(setW('k', 'committed'), true);
  r.peek.exec('BEGIN EXCLUSIVE');
  try {
    const a1 = r.queue.push(setW('k', 'lost'), true)!;
    const a2 = r.queue.push(delW('other'), true)!;
    assert.deepEqual(r.queue.overlay.lookup(null, b('k'), Date.now())?.value, b('lost'));
    await assert.rejects(a1, (err: Error & { code?: string }) => {
      assert.equal(err.code, 'SQLITE_BUSY');
      assert.match(err.message, /database is locked/);
      return true;
    });
    await assert.rejects(a2, /database is locked/);
  } finally {
    r.peek.exec('ROLLBACK');
  }
  assert.equal(r.failures.length, 2);
  assert.equal(r.failures[0].write.kind, 'set');
  assert.equal(r.failures[1].write.kind, 'del');
  assert.match(r.failures[0].err.message, /database is locked/);
  assert.equal(r.queue.failedOps, 2);
  assert.equal(r.queue.committedOps, 1);
  assert.deepEqual(r.commitsSeen.map((c) => c.ok), [true, false]);
  // The failed write no longer shadows what is really stored.
  assert.equal(r.queue.overlay.lookup(null, b('k'), Date.now()), undefined);
  assert.equal(r.queue.overlay.size, 0);
  assert.equal(r.shard.get(b('k'), Date.now())?.data.toString(), 'committed');
  // Budget released even though the commit failed.
  assert.equal(r.budget.ops, 0);
  assert.equal(r.budget.bytes, 0);
  // And the queue recovers once the lock is gone.
  await r.queue.push(setW('k', 'again'), true);
  assert.equal(r.stored('k'), 'again');
});

function addPoisonTrigger(db: Database.Database): void {
  db.exec(`CREATE TRIGGER poison BEFORE INSERT ON blobs WHEN NEW.data = X'${b('poison').toString('hex')}'
           BEGIN SELECT RAISE(ABORT, 'boom'); END`);
}

test('a failing savepoint group fails alone; the other groups of the commit are kept', async () => {
  const r = rig({ batchSize: 1 });
  await r.queue.push(setW('bad', 'before'), true);
  addPoisonTrigger(r.peek);
  const good1 = r.queue.push(setW('good1', 'g1'), true)!;
  const bad = r.queue.push(setW('bad', 'poison'), true)!;
  const good2 = r.queue.push(setW('good2', 'g2'), true)!;
  assert.deepEqual(r.queue.overlay.lookup(null, b('bad'), Date.now())?.value, b('poison'));
  await assert.rejects(bad, /boom/);
  await good1;
  await good2;
  assert.equal(r.queue.commits, 2);
  assert.deepEqual(r.groupSizes[1], [1, 1, 1]);
  assert.equal(r.failures.length, 1);
  assert.match(r.failures[0].err.message, /boom/);
  assert.deepEqual((r.failures[0].write as { key: Buffer }).key, b('bad'));
  assert.equal(r.stored('good1'), 'g1');
  assert.equal(r.stored('good2'), 'g2');
  assert.equal(r.stored('bad'), 'before');
  assert.equal(r.queue.overlay.lookup(null, b('bad'), Date.now()), undefined);
  assert.equal(r.shard.get(b('bad'), Date.now())?.data.toString(), 'before');
  assert.deepEqual(r.commitsSeen[1], { ops: 3, ok: true });
});

test('a flush that fails halfway leaves both tables as they were, even alone in its group', async () => {
  for (const batchSize of [1, 1000]) {
    const r = rig({ batchSize });
    await r.queue.push(setW('k', 'v'), true);
    await r.queue.push(setW('f', 'v', 'ns'), true);
    // blobs is set aside first, then ns_blobs cannot be: its new name is taken (by an index).
    r.peek.exec('CREATE INDEX ns_blobs_flushed_1 ON stats (keys)');
    await assert.rejects(r.queue.push({ kind: 'flush' }, true)!, /already another table or index/);
    assert.equal(r.stored('k'), 'v', `batchSize ${batchSize}`);
    assert.equal(r.peek.prepare('SELECT count(*) FROM ns_blobs').pluck().get(), 1);
    // The barrier is gone: reads see the stored rows again.
    assert.equal(r.queue.overlay.lookup(null, b('k'), Date.now()), undefined);
  }
});

test('a group is all-or-nothing: a good write grouped with a bad one fails with it', async () => {
  const r = rig({ batchSize: 2 });
  addPoisonTrigger(r.peek);
  const acks = [setW('a', '1'), setW('b', 'poison'), setW('c', '3'), setW('d', '4')].map((w) => r.queue.push(w, true)!);
  const results = await Promise.allSettled(acks);
  assert.deepEqual(
    results.map((s) => s.status),
    ['rejected', 'rejected', 'fulfilled', 'fulfilled'],
  );
  assert.equal(r.stored('a'), undefined);
  assert.equal(r.stored('b'), undefined);
  assert.equal(r.stored('c'), '3');
  assert.equal(r.stored('d'), '4');
  assert.equal(r.queue.failedOps, 2);
  assert.equal(r.queue.committedOps, 2);
  assert.equal(r.queue.overlay.size, 0);
});

test('writes awaiting off-thread encoding commit in order with the rest of their batch', async () => {
  const r = rig();
  let resolveEnc!: (e: Encoded) => void;
  const enc = new Promise<Encoded>((res) => (resolveEnc = res));
  const a1 = r.queue.push(setW('k', 'plain-1'), true)!;
  const a2 = r.queue.push(setW('k', 'big', null, enc), true)!;
  await turn();
  await turn();
  assert.equal(r.queue.commits, 0);
  // Writes arriving meanwhile wait for the next commit; reads see the newest.
  const a3 = r.queue.push(setW('k', 'newest'), true)!;
  assert.deepEqual(r.queue.overlay.lookup(null, b('k'), Date.now())?.value, b('newest'));
  let drained = false;
  const d = r.queue.drain().then(() => (drained = true));
  await turn();
  assert.equal(drained, false);
  resolveEnc({ codec: 0, payload: b('big') });
  await a1;
  await a2;
  assert.equal(r.stored('k'), 'big');
  assert.deepEqual(r.queue.overlay.lookup(null, b('k'), Date.now())?.value, b('newest'));
  await a3;
  await d;
  assert.equal(r.stored('k'), 'newest');
  assert.equal(r.queue.commits, 2);
  assert.deepEqual(r.groupSizes, [[2], [1]]);
  assert.equal(r.queue.overlay.size, 0);
});

test('a failed encoding fails only its own write', async () => {
  const r = rig();
  await r.queue.push(setW('k', 'committed'), true);
  const failed = Promise.reject(new Error('codec exploded'));
  failed.catch(() => {});
  const a1 = r.queue.push(setW('ok', '1'), true)!;
  const a2 = r.queue.push(setW('k', 'x', null, failed), true)!;
  await a1;
  await assert.rejects(a2, /codec exploded/);
  assert.equal(r.stored('ok'), '1');
  assert.equal(r.stored('k'), 'committed');
  assert.equal(r.queue.overlay.lookup(null, b('k'), Date.now()), undefined);
  assert.equal(r.failures.length, 1);
  assert.match(r.failures[0].err.message, /codec exploded/);
});

test('InflightBudget: room by ops and by bytes; one write is always admitted', () => {
  const budget = new InflightBudget(2, 100);
  assert.equal(budget.hasRoom, true);
  budget.take(10);
  assert.equal(budget.hasRoom, true);
  budget.take(10);
  assert.equal(budget.hasRoom, false); // at capacity: 2 ops
  budget.release(1, 10);
  assert.equal(budget.hasRoom, true);
  budget.release(1, 10);
  assert.equal(budget.ops, 0);
  assert.equal(budget.bytes, 0);
  budget.take(500); // bigger than maxBytes, admitted alone
  assert.equal(budget.hasRoom, false);
  budget.release(1, 500);
  assert.equal(budget.hasRoom, true);
  budget.take(100);
  assert.equal(budget.hasRoom, false); // at capacity: 100 bytes
});

test('InflightBudget: waitForRoom resolves after a commit frees room', async () => {
  const budget = new InflightBudget(2, 1 << 20);
  const r = rig({}, budget);
  r.queue.push(setW('a', '1'), false);
  r.queue.push(setW('b', '2'), false);
  assert.equal(budget.ops, 2);
  assert.equal(budget.bytes, 4);
  assert.equal(budget.hasRoom, false);
  let woke = false;
  const wait = budget.waitForRoom().then(() => (woke = true));
  await Promise.resolve();
  assert.equal(woke, false);
  assert.equal(r.queue.commits, 0);
  await wait;
  assert.equal(woke, true);
  assert.equal(r.queue.commits, 1);
  assert.equal(budget.ops, 0);
  assert.equal(budget.hasRoom, true);
});

test('drain resolves only after every queued write has committed', async () => {
  const r = rig({ batchSize: 10 });
  // More than one commit's worth (4096 ops per commit).
  for (let i = 0; i < 5000; i++) r.queue.push(setW(`k${i}`, 'v'), false);
  let drained = false;
  const d = r.queue.drain().then(() => (drained = true));
  await turn();
  assert.equal(drained, false);
  await d;
  assert.equal(r.queue.depth, 0);
  assert.equal(r.queue.commits, 2);
  assert.equal(r.queue.committedOps, 5000);
  assert.equal(r.peek.prepare('SELECT count(*) FROM blobs').pluck().get(), 5000);
  // Nothing queued: drain resolves at once.
  await r.queue.drain();
});

test('Shard.applyGroups reports each group and rolls back only the failing one', () => {
  const r = rig();
  addPoisonTrigger(r.peek);
  const set = (k: string, v: string): ShardWrite => ({ kind: 'set', ns: null, key: b(k), data: b(v), codec: 0, size: v.length, now: 1, expiresAt: null });
  const results = r.shard.applyGroups([[set('a', '1')], [set('b', '2'), set('c', 'poison')], [set('d', '4')]]);
  assert.equal(results.length, 3);
  assert.equal(results[0], null);
  assert.match(String(results[1]?.message), /boom/);
  assert.equal(results[2], null);
  assert.equal(r.stored('a'), '1');
  assert.equal(r.stored('b'), undefined);
  assert.equal(r.stored('c'), undefined);
  assert.equal(r.stored('d'), '4');
});

test('drain waits for the writes queued before it, not for later ones (no starvation under load)', async () => {
  const r = rig();
  const deferred = (): { enc: Promise<Encoded>; done: (v: string) => void } => {
    let done!: (v: string) => void;
    const enc = new Promise<Encoded>((res) => (done = (v) => res({ codec: 0, payload: b(v) })));
    return { enc, done };
  };
  const e1 = deferred();
  r.queue.push(setW('k1', 'v1', null, e1.enc), false);
  await turn(); // batch 1 is now waiting for its encoding
  let drained = false;
  const d = r.queue.drain().then(() => (drained = true));
  // Load keeps coming: batch 2 will also wait for an encoding.
  const e2 = deferred();
  r.queue.push(setW('k2', 'v2', null, e2.enc), false);
  e1.done('v1');
  await turn();
  await turn();
  assert.equal(r.stored('k1'), 'v1');
  assert.equal(r.queue.commits, 1);
  await turn();
  assert.equal(drained, true, 'drain() resolved once everything queued before it committed');
  await d;
  let drained2 = false;
  const d2 = r.queue.drain().then(() => (drained2 = true));
  await turn();
  assert.equal(drained2, false);
  e2.done('v2');
  await d2;
  assert.equal(r.stored('k2'), 'v2');
});

test('a statement that rolls back the whole transaction fails every group with its own reason', async () => {
  const r = rig({ batchSize: 1 });
  r.peek.exec(`CREATE TRIGGER doom BEFORE INSERT ON blobs WHEN NEW.key = X'${b('doom').toString('hex')}'
               BEGIN SELECT RAISE(ROLLBACK, 'whole transaction gone'); END`);
  const acks = [setW('a', '1'), setW('doom', '2'), setW('c', '3')].map((w) => r.queue.push(w, true)!);
  const results = await Promise.allSettled(acks);
  for (const res of results) {
    assert.equal(res.status, 'rejected');
    assert.match(String((res as PromiseRejectedResult).reason.message), /whole transaction gone/);
  }
  assert.equal(r.stored('a'), undefined);
  assert.equal(r.stored('c'), undefined);
  assert.equal(r.queue.overlay.size, 0);
  assert.deepEqual(r.commitsSeen.map((c) => c.ok), [false]);
  // The connection is usable afterwards.
  await r.queue.push(setW('a', 'again'), true);
  assert.equal(r.stored('a'), 'again');
});

test('InflightBudget: waitForRoom resolves at once when there is room', async () => {
  const budget = new InflightBudget(2, 100);
  await budget.waitForRoom(); // nothing in flight: must not hang
  budget.take(1);
  await budget.waitForRoom();
});

test('an offloaded sweep starts only after the writes queued before it have committed', async () => {
  const r = rig();
  const events: string[] = [];
  const apply = r.shard.applyGroups.bind(r.shard);
  r.shard.applyGroups = (groups) => {
    events.push(`commit:${groups.flat().map((w) => w.kind).join(',')}`);
    return apply(groups);
  };
  const a = r.queue.push(setW('a', '1'), true)!;
  const sweep = r.queue.push(
    {
      kind: 'sweep',
      now: Date.now(),
      limit: 25,
      offload: async () => {
        // What came before the sweep is already visible to another connection.
        events.push(`offload-start a=${r.stored('a')}`);
        await sleep(20);
        events.push('offload-end');
        return { rows: 7, full: true };
      },
    },
    true,
  )!;
  const c = r.queue.push(setW('c', '3'), true)!;
  await Promise.all([a, sweep, c]);
  assert.deepEqual(events, ['commit:set', 'offload-start a=1', 'offload-end', 'commit:swept,set']);
  // The worker's result is counted by the shard, in commit order.
  assert.equal(r.shard.sweptRows, 7);
  assert.equal(r.shard.lastSweepFull, true);
});

test('while an offloaded sweep runs, nothing else commits on that shard; later writes follow it', async () => {
  const r = rig();
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const sweep = r.queue.push({ kind: 'sweep', now: Date.now(), limit: 25, offload: async () => (await gate, { rows: 0, full: false }) }, true)!;
  await turn();
  const later = r.queue.push(setW('later', 'x'), true)!;
  await sleep(30);
  assert.equal(r.queue.commits, 0);
  assert.equal(r.stored('later'), undefined);
  release();
  await Promise.all([sweep, later]);
  assert.equal(r.stored('later'), 'x');
  assert.equal(r.queue.depth, 0);
});

test('a failed offloaded sweep fails only itself and reports through onFailure', async () => {
  const r = rig();
  const sweep = r.queue.push({ kind: 'sweep', now: Date.now(), limit: 25, offload: () => Promise.reject(new Error('worker gone')) }, true)!;
  const next = r.queue.push(setW('k', 'v'), true)!;
  await assert.rejects(sweep, /worker gone/);
  await next;
  assert.equal(r.stored('k'), 'v');
  assert.deepEqual(r.failures.map((f) => [f.write.kind, f.err.message]), [['sweep', 'worker gone']]);
});

test('reads share a read transaction within a turn, and a commit in the same turn is seen by the next read', async () => {
  const r = rig();
  const now = Date.now();
  const set = (key: string, value: string): ShardWrite => ({ kind: 'set', ns: null, key: b(key), data: b(value), codec: 0, size: value.length, now, expiresAt: null });
  r.shard.applyGroups([[set('k', 'one')]]);
  await turn();
  // Same turn: read (opens the shared read transaction), commit, read again.
  assert.equal(r.shard.get(b('k'), now)?.data.toString(), 'one');
  r.shard.applyGroups([[set('k', 'two')]]);
  assert.equal(r.shard.get(b('k'), now)?.data.toString(), 'two');
  assert.equal(r.stored('k'), 'two', 'committed for other connections too');
  // The read transaction ends with the turn: another connection can then take the write lock.
  r.shard.get(b('k'), now);
  await turn();
  r.peek.exec("INSERT INTO blobs (key, data, codec, size, created_at, updated_at, expires_at, version) VALUES (X'6F74686572', X'78', 0, 1, 0, 0, NULL, 0)");
  assert.equal(r.shard.get(b('other'), now)?.data.toString(), 'x');
});

/** Pushes `writes` as one transaction (what Store.atomically does for each shard's queue). */
function pushAtomic(q: WriteQueue, group: number, writes: PendingWrite[]): Promise<void>[] {
  q.atomicGroup = group;
  try {
    return writes.map((w) => q.push(w, true)!);
  } finally {
    q.atomicGroup = undefined;
  }
}

test("a transaction's writes get one savepoint group of their own, whatever batchSize", async () => {
  const r = rig({ batchSize: 2 });
  const before = [setW('b1', '1'), setW('b2', '2'), setW('b3', '3')].map((w) => r.queue.push(w, true)!);
  const tx = pushAtomic(r.queue, 1, Array.from({ length: 5 }, (_, i) => setW(`t${i}`, `${i}`)));
  const after = [setW('a1', '1'), setW('a2', '2')].map((w) => r.queue.push(w, true)!);
  await Promise.all([...before, ...tx, ...after]);
  assert.equal(r.queue.commits, 1);
  assert.deepEqual(r.groupSizes, [[2, 1, 5, 2]]);
});

test("a transaction's writes are never split across commits by the per-commit caps", async () => {
  const r = rig({ batchSize: 1000 });
  // More than MAX_OPS_PER_COMMIT (4096): ordinary writes would be split into two commits.
  const plain = Array.from({ length: 5000 }, (_, i) => r.queue.push(setW(`p${i}`, 'v'), true)!);
  await Promise.all(plain);
  assert.deepEqual(r.commitsSeen.map((c) => c.ops), [4096, 904]);
  r.groupSizes.length = 0;
  r.commitsSeen.length = 0;
  const lead = Array.from({ length: 100 }, (_, i) => r.queue.push(setW(`l${i}`, 'v'), true)!);
  const tx = pushAtomic(r.queue, 7, Array.from({ length: 5000 }, (_, i) => setW(`t${i}`, 'v')));
  await Promise.all([...lead, ...tx]);
  // The transaction started inside the first commit's cap and was taken whole into it.
  assert.deepEqual(r.commitsSeen.map((c) => c.ops), [5100]);
  assert.deepEqual(r.groupSizes, [[100, 5000]]);
});

test('a transaction that reaches the cap starts the next commit rather than being split', async () => {
  const r = rig({ batchSize: 1000 });
  const lead = Array.from({ length: 4096 }, (_, i) => r.queue.push(setW(`l${i}`, 'v'), true)!);
  const tx = pushAtomic(r.queue, 1, Array.from({ length: 10 }, (_, i) => setW(`t${i}`, 'v')));
  await Promise.all([...lead, ...tx]);
  assert.deepEqual(r.commitsSeen.map((c) => c.ops), [4096, 10]);
  assert.deepEqual(r.groupSizes[1], [10]);
});

test("a transaction's group is all-or-nothing on its shard; writes outside it are kept", async () => {
  const r = rig({ batchSize: 1 });
  addPoisonTrigger(r.peek);
  const outside = r.queue.push(setW('outside', 'o'), true)!;
  const tx = pushAtomic(r.queue, 3, [setW('t1', '1'), setW('t2', 'poison'), setW('t3', '3'), delW('outside')]);
  const results = await Promise.allSettled([outside, ...tx]);
  assert.deepEqual(results.map((s) => s.status), ['fulfilled', 'rejected', 'rejected', 'rejected', 'rejected']);
  assert.deepEqual(r.groupSizes, [[1, 4]]);
  assert.equal(r.stored('outside'), 'o');
  assert.equal(r.stored('t1'), undefined);
  assert.equal(r.stored('t3'), undefined);
  assert.equal(r.queue.overlay.size, 0);
});

test('a write of a transaction that fails to encode fails alone; the rest of its group commits', async () => {
  const r = rig({ batchSize: 1 });
  const failing = Promise.reject(new Error('encoder broke'));
  failing.catch(() => {});
  const tx = pushAtomic(r.queue, 4, [setW('t1', '1'), setW('t2', 'x', null, failing), setW('t3', '3')]);
  const results = await Promise.allSettled(tx);
  assert.deepEqual(results.map((s) => s.status), ['fulfilled', 'rejected', 'fulfilled']);
  assert.deepEqual(r.groupSizes, [[2]]);
  assert.equal(r.stored('t1'), '1');
  assert.equal(r.stored('t3'), '3');
});

test('value cache: a committed write fills it, unless a newer write to the key is still pending', async () => {
  const r = rig({ valueCacheBytes: 1 << 20 });
  const now = Date.now();
  await r.queue.push(setW('k', 'v1'), true);
  assert.equal(r.queue.cache.get(null, b('k'), now)?.value.toString(), 'v1', 'filled by the commit');
  // Executed, not committed: the overlay answers for the key (reads look there first); the
  // commit settles the cache entry.
  const a2 = r.queue.push(setW('k', 'v2'), true);
  assert.equal(r.queue.overlay.lookup(null, b('k'), now)?.value?.toString(), 'v2');
  await a2;
  assert.equal(r.queue.cache.get(null, b('k'), now)?.value.toString(), 'v2');
  // Two writes in one batch: the last one is what stays.
  r.queue.push(setW('k', 'v3'), false);
  await r.queue.push(setW('k', 'v4'), true);
  assert.equal(r.queue.cache.get(null, b('k'), now)?.value.toString(), 'v4');
  // A delete and an expiry change leave the key out.
  await r.queue.push(delW('k'), true);
  assert.equal(r.queue.cache.get(null, b('k'), now), undefined);
  await r.queue.push(setW('k', 'v5'), true);
  await r.queue.push({ kind: 'expire', ns: null, key: b('k'), expiresAt: now + 60_000, now }, true);
  assert.equal(r.queue.cache.get(null, b('k'), now), undefined);
  // A set followed by a flush in the same batch: nothing is kept.
  r.queue.push(setW('f', 'gone'), false);
  await r.queue.push({ kind: 'flush' }, true);
  assert.equal(r.queue.cache.get(null, b('f'), now), undefined);
  assert.equal(r.queue.cache.smallStats().entries, 0);
});

test('value cache: a write that fails to commit leaves nothing behind in it', async () => {
  const r = rig({ valueCacheBytes: 1 << 20 });
  await r.queue.push(setW('k', 'committed'), true);
  r.peek.exec('BEGIN EXCLUSIVE');
  try {
    await assert.rejects(r.queue.push(setW('k', 'lost'), true)!, /database is locked/);
  } finally {
    r.peek.exec('ROLLBACK');
  }
  assert.equal(r.queue.cache.get(null, b('k'), Date.now()), undefined);
  assert.equal(r.shard.get(b('k'), Date.now())?.data.toString(), 'committed');
});

/** A set of a value read into a buffer lent by `pool`, as the parser reads a 256 KiB – 1 MiB bulk. */
function pooledSet(pool: ValueBuffers, key: string, fill: number): PendingWrite & { kind: 'set'; value: Buffer } {
  const lent = pool.lend(ValueBuffers.minLength, true)!;
  const v = lent.subarray(0, ValueBuffers.minLength).fill(fill);
  return { kind: 'set', ns: null, key: b(key), value: v, encoded: { codec: 0, payload: v }, now: Date.now(), expiresAt: null };
}

test('receive buffers: a committed set nobody read gives its buffer back; one read from the overlay, failed or claimed twice does not', async () => {
  const pool = new ValueBuffers();
  const r = rig({ valueBuffers: pool });
  try {
    // Committed, never read: back in the pool, and the next lend reuses the same memory.
    const plain = pooledSet(pool, 'plain', 1);
    await r.queue.push(plain, true);
    assert.equal(pool.recycled, 1);
    assert.equal(r.stored('plain'), Buffer.alloc(ValueBuffers.minLength, 1).toString('latin1'));
    const again = pool.lend(ValueBuffers.minLength, false);
    assert.ok(again !== null && again.buffer === plain.value.buffer);
    again.fill(9); // what the next client's bytes would do: the committed row does not change
    assert.equal(r.stored('plain'), Buffer.alloc(ValueBuffers.minLength, 1).toString('latin1'));

    // Read from the overlay before the commit (a GET whose reply may still be writing it): kept out.
    const read = pooledSet(pool, 'read', 2);
    const ack = r.queue.push(read, true)!;
    const seen = r.queue.overlay.lookup(null, b('read'), Date.now())!.value as Buffer;
    await ack;
    assert.equal(pool.recycled, 1);
    assert.ok(seen.equals(Buffer.alloc(ValueBuffers.minLength, 2)));
    assert.equal(pool.lend(ValueBuffers.minLength, false), null, 'the read value was not handed out again');

    // Listed while pending (HGETALL-like reads of the overlay): kept out too.
    const listed = pooledSet(pool, 'listed', 3);
    const ack2 = r.queue.push(listed, true)!;
    for (const _ of r.queue.overlay.pending(null));
    await ack2;
    assert.equal(pool.recycled, 1);

    // One buffer as the value of two writes: neither gives it back.
    const twice = pooledSet(pool, 'twice-a', 4);
    const copy: PendingWrite = { ...twice, key: b('twice-b') };
    await Promise.all([r.queue.push(twice, true), r.queue.push(copy, true)]);
    assert.equal(pool.recycled, 1);

    // A commit that fails keeps the buffer out (the failure handler may still look at the write).
    r.peek.exec('BEGIN EXCLUSIVE');
    try {
      await assert.rejects(r.queue.push(pooledSet(pool, 'failed', 5), true)!, /database is locked/);
    } finally {
      r.peek.exec('ROLLBACK');
    }
    assert.equal(pool.recycled, 1);

    // Replaced by a newer pending write before anyone read it: the older value goes back too.
    const older = pooledSet(pool, 'k', 6);
    const newer = pooledSet(pool, 'k', 7);
    await Promise.all([r.queue.push(older, true), r.queue.push(newer, true)]);
    assert.equal(pool.recycled, 3);
    assert.equal(r.stored('k'), Buffer.alloc(ValueBuffers.minLength, 7).toString('latin1'));
  } finally {
    pool.close();
  }
});

test('receive buffers: a value the pool did not lend is never given to it', async () => {
  const pool = new ValueBuffers();
  const r = rig({ valueBuffers: pool });
  try {
    await r.queue.push(setW('k', 'x'.repeat(ValueBuffers.minLength)), true);
    assert.equal(pool.recycled, 0);
    assert.equal(pool.lend(ValueBuffers.minLength, false), null);
  } finally {
    pool.close();
  }
});
