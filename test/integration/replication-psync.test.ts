/**
 * Replication across a failover without a full copy (PSYNC2's replid/replid2), and small deltas
 * of chunked values.
 *
 * One primary and two replicas: the first replica is promoted (REPLICAOF NO ONE), the second
 * follows it and continues from its offset — no copy taken on either side (counters in INFO), its
 * data byte for byte the new primary's; the old primary, with a write the new primary never got,
 * follows too and takes a full copy (its history diverged). INFO replication shows
 * master_replid/master_replid2/second_repl_offset as Redis does.
 *
 * APPEND of a few bytes to a 20 MiB value moves only the chunks that changed to a replica that
 * has the old value; a value with no previous chunked value here moves whole.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startOurs, type TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/cluster.js';

const MiB = 1024 * 1024;

function field(info: string, name: string): string {
  const m = new RegExp(`^${name}:(.*)\\r$`, 'm').exec(info);
  if (m === null) throw new Error(`no ${name} in ${info}`);
  return m[1];
}

async function fieldOf(c: Redis, section: string, name: string): Promise<string> {
  return field(await c.info(section), name);
}

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  let x = (seed * 2654435761 + 1) >>> 0;
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b.writeUInt32LE(x, i);
  }
  for (; i < size; i++) b[i] = (x >>> (8 * (i % 4))) & 0xff;
  return b;
}

function client(s: TestServer): Redis {
  return new Redis({ port: s.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
}

async function caughtUp(p: Redis, r: Redis): Promise<boolean> {
  const [pi, ri] = [await p.info('replication'), await r.info('replication')];
  return field(ri, 'master_link_status') === 'up' && field(pi, 'master_repl_offset') === field(ri, 'slave_repl_offset');
}

/** Every key of `a` and `b`, byte for byte (strings and hashes), and the same key count. */
async function sameData(a: Redis, b: Redis, where: string): Promise<number> {
  assert.equal(await b.dbsize(), await a.dbsize(), `${where}: DBSIZE`);
  let n = 0;
  let cursor = '0';
  do {
    const [next, keys] = await a.scan(cursor, 'COUNT', 200);
    cursor = next;
    for (const k of keys) {
      const type = await a.type(k);
      assert.equal(await b.type(k), type, `${where}: type of ${k}`);
      if (type === 'string') {
        const [va, vb] = [await a.getBuffer(k), await b.getBuffer(k)];
        assert.ok(va !== null && vb !== null && va.equals(vb), `${where}: bytes of ${k} differ`);
      } else {
        assert.deepEqual(await b.hgetallBuffer(k), await a.hgetallBuffer(k), `${where}: fields of ${k}`);
      }
      n++;
    }
  } while (cursor !== '0');
  return n;
}

describe('replication after a failover: the other replica continues from its offset (PSYNC2)', () => {
  let primary: TestServer;
  let r1: TestServer;
  let r2: TestServer;
  let p: Redis;
  let a: Redis;
  let b: Redis;

  before(async () => {
    primary = await startOurs({ replication: { backlog_mb: 32 } });
    r1 = await startOurs({ replication: { backlog_mb: 32 } });
    r2 = await startOurs({ replication: { backlog_mb: 32 } });
    [p, a, b] = [client(primary), client(r1), client(r2)];
    for (const c of [p, a, b]) await c.connect();
  });
  after(async () => {
    for (const c of [p, a, b]) c.disconnect();
    for (const s of [r2, r1, primary]) await s.close();
  });

  it('the promoted replica keeps the old history as replid2; the second replica resumes without a copy, byte for byte equal', async () => {
    for (let i = 0; i < 300; i++) await p.set(`k:${i}`, `v${i}`);
    await p.set('big', pattern(3 * MiB, 1));
    assert.equal(await a.replicaof('127.0.0.1', String(primary.port)), 'OK');
    assert.equal(await b.replicaof('127.0.0.1', String(primary.port)), 'OK');
    await waitFor('both replicas up', async () => (await caughtUp(p, a)) && (await caughtUp(p, b)), 20_000);
    // Writes both replicas get through the stream: small values, a hash, chunked values, an APPEND.
    for (let i = 0; i < 300; i++) await p.set(`s:${i}`, `w${i}`);
    await p.hset('h', 'f1', 'x', 'f2', pattern(MiB + 7, 2));
    await p.set('big2', pattern(5 * MiB, 3));
    await p.append('big', 'tail');
    await p.del('k:0');
    assert.equal(await p.wait(2, 10_000), 2);
    const oldReplid = await fieldOf(p, 'replication', 'master_replid');
    const oldOffset = Number(await fieldOf(p, 'replication', 'master_repl_offset'));
    assert.equal(await fieldOf(a, 'replication', 'master_replid'), oldReplid, 'a replica shows its primary\'s id');
    assert.equal(await fieldOf(a, 'replication', 'master_replid2'), '0000000000000000000000000000000000000000');
    assert.equal(await fieldOf(a, 'replication', 'second_repl_offset'), '-1');
    assert.equal(await fieldOf(a, 'replication', 'full_syncs'), '1');
    assert.equal(await fieldOf(b, 'replication', 'full_syncs'), '1');
    assert.equal(await fieldOf(p, 'stats', 'sync_full'), '2');

    // Failover: r1 becomes the primary.
    assert.equal(await a.replicaof('NO', 'ONE'), 'OK');
    const ainfo = await a.info('replication');
    assert.equal(field(ainfo, 'role'), 'master');
    assert.notEqual(field(ainfo, 'master_replid'), oldReplid);
    assert.equal(field(ainfo, 'master_replid2'), oldReplid);
    // As Redis: the first offset of the new history, counted from 1.
    assert.equal(field(ainfo, 'second_repl_offset'), String(oldOffset + 1));
    assert.equal(field(ainfo, 'master_repl_offset'), String(oldOffset));
    const newReplid = field(ainfo, 'master_replid');
    await a.set('after:1', 'one');
    await a.set('after:big', pattern(2 * MiB + 1, 4));

    // The second replica follows the new primary and continues from its offset: no copy.
    assert.equal(await b.replicaof('127.0.0.1', String(r1.port)), 'OK');
    await a.set('after:2', 'two');
    await waitFor('second replica caught up with the new primary', () => caughtUp(a, b), 20_000);
    const binfo = await b.info('replication');
    assert.equal(field(binfo, 'full_syncs'), '1', 'no new copy on the second replica');
    assert.equal(field(binfo, 'partial_syncs'), '1');
    assert.equal(await fieldOf(a, 'stats', 'sync_full'), '0', 'the new primary made no copy');
    assert.equal(field(binfo, 'master_replid'), newReplid);
    assert.equal(field(binfo, 'master_replid2'), oldReplid);
    assert.equal(field(binfo, 'second_repl_offset'), String(oldOffset + 1));
    assert.ok((await sameData(a, b, 'second replica after resuming')) >= 600);
    assert.equal(await b.get('after:2'), 'two');
    assert.equal(await b.exists('k:0'), 0);
    // The stream goes on, chunked values included, through the new primary's blobs.
    await a.append('big2', 'more');
    await a.set('after:big2', pattern(MiB + 5, 5));
    assert.equal(await a.wait(1, 10_000), 1);
    await sameData(a, b, 'second replica after more writes');
  });

  it('the old primary, with a write the new primary never got, takes a full copy', async () => {
    await p.set('only-on-the-old-primary', 'lost');
    assert.equal(await p.replicaof('127.0.0.1', String(r1.port)), 'OK');
    await waitFor('old primary caught up', () => caughtUp(a, p), 20_000);
    assert.equal(await fieldOf(p, 'replication', 'full_syncs'), '1');
    assert.equal(await fieldOf(p, 'replication', 'partial_syncs'), '0');
    assert.equal(await fieldOf(a, 'stats', 'sync_full'), '1');
    assert.equal(await p.exists('only-on-the-old-primary'), 0);
    await sameData(a, p, 'old primary after its copy');
  });
});

describe('an old primary without writes of its own continues too', () => {
  let primary: TestServer;
  let replica: TestServer;
  let p: Redis;
  let r: Redis;

  before(async () => {
    primary = await startOurs({ replication: { backlog_mb: 8 } });
    replica = await startOurs({ replication: { backlog_mb: 8 } });
    [p, r] = [client(primary), client(replica)];
    for (const c of [p, r]) await c.connect();
  });
  after(async () => {
    for (const c of [p, r]) c.disconnect();
    for (const s of [replica, primary]) await s.close();
  });

  it('resumes from its own offset against the promoted replica, and again after switching back', async () => {
    for (let i = 0; i < 100; i++) await p.set(`k:${i}`, `v${i}`);
    assert.equal(await r.replicaof('127.0.0.1', String(primary.port)), 'OK');
    await waitFor('replica up', () => caughtUp(p, r), 20_000);
    await p.set('streamed', pattern(2 * MiB, 9));
    assert.equal(await p.wait(1, 10_000), 1);
    // A clean switch-over: the replica has everything, then takes over; the old primary follows.
    assert.equal(await r.replicaof('NO', 'ONE'), 'OK');
    await r.set('new', 'write');
    assert.equal(await p.replicaof('127.0.0.1', String(replica.port)), 'OK');
    await waitFor('old primary caught up', () => caughtUp(r, p), 20_000);
    assert.equal(await fieldOf(p, 'replication', 'full_syncs'), '0');
    assert.equal(await fieldOf(p, 'replication', 'partial_syncs'), '1');
    assert.equal(await fieldOf(r, 'stats', 'sync_full'), '0');
    await sameData(r, p, 'old primary after resuming');
    // Switch back: the first primary is promoted again; the other continues under both ids.
    assert.equal(await p.replicaof('NO', 'ONE'), 'OK');
    await p.set('back', 'again');
    assert.equal(await r.replicaof('127.0.0.1', String(primary.port)), 'OK');
    await waitFor('switched back', () => caughtUp(p, r), 20_000);
    assert.equal(await fieldOf(r, 'replication', 'full_syncs'), '1', 'its only copy is the first one');
    assert.equal(await fieldOf(r, 'replication', 'partial_syncs'), '1');
    await sameData(p, r, 'after switching back');
  });
});

describe('APPEND to a chunked value sends a replica only the chunks that changed', () => {
  let primary: TestServer;
  let replica: TestServer;
  let p: Redis;
  let r: Redis;

  before(async () => {
    primary = await startOurs({ replication: { backlog_mb: 64 } });
    replica = await startOurs({ replication: { backlog_mb: 64 } });
    [p, r] = [client(primary), client(replica)];
    for (const c of [p, r]) await c.connect();
    assert.equal(await r.replicaof('127.0.0.1', String(primary.port)), 'OK');
    await waitFor('replica up', () => caughtUp(p, r), 20_000);
  });
  after(async () => {
    for (const c of [p, r]) c.disconnect();
    for (const s of [replica, primary]) await s.close();
  });

  const fetched = async (): Promise<number> => Number(await fieldOf(r, 'replication', 'repl_blob_bytes_fetched'));
  const reused = async (): Promise<number> => Number(await fieldOf(r, 'replication', 'repl_blob_chunks_reused'));

  it('APPEND of 3 bytes to a 20 MiB value moves less than 1 MiB; the replica reads the right bytes', async () => {
    let want = pattern(20 * MiB, 31);
    await p.set('v', want);
    assert.equal(await p.wait(1, 20_000), 1);
    const before = await fetched();
    assert.ok(before >= 20 * MiB, `the first value moved whole (${before} bytes)`);
    await p.append('v', 'xyz');
    want = Buffer.concat([want, Buffer.from('xyz')]);
    assert.equal(await p.wait(1, 10_000), 1);
    const moved = (await fetched()) - before;
    assert.ok(moved < MiB, `APPEND moved ${moved} bytes`);
    assert.ok(moved > 0);
    assert.ok((await reused()) >= 79, 'the unchanged chunks were reused');
    const got = await r.getBuffer('v');
    assert.ok(got !== null && got.length === want.length && got.equals(want), 'the replica reads the appended value');
    // SETRANGE in the middle: one chunk moves.
    const b2 = await fetched();
    await p.setrange('v', 10 * MiB + 17, 'middle');
    want.write('middle', 10 * MiB + 17);
    assert.equal(await p.wait(1, 10_000), 1);
    assert.ok((await fetched()) - b2 < MiB);
    assert.ok((await r.getBuffer('v'))!.equals(want));
  });

  it('falls back to the whole value when the replica has no chunked previous value', async () => {
    const v = pattern(MiB, 33); // 1 MiB stays inline: no blob to derive from
    await p.set('small', v);
    assert.equal(await p.wait(1, 10_000), 1);
    const before = await fetched();
    await p.append('small', 'grow');
    assert.equal(await p.wait(1, 10_000), 1);
    assert.ok((await fetched()) - before >= MiB, 'the value moved whole');
    assert.ok((await r.getBuffer('small'))!.equals(Buffer.concat([v, Buffer.from('grow')])));
  });
});
