/**
 * Replication of values stored in chunks (over 1 MiB): a replica's full copy carries the chunk
 * files with the shard files, the stream carries a chunked value as a reference whose chunks the
 * replica fetches (not as one buffer in the stream), and both read back byte for byte on the
 * replica, after a failover (REPLICAOF NO ONE), and on the old primary once it follows the new one
 * (a full copy that replaces files holding chunked values of its own).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startOurs, type TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/cluster.js';

const MiB = 1024 * 1024;

function field(info: string, name: string): string {
  const m = new RegExp(`^${name}:(.*)\\r$`, 'm').exec(info);
  if (m === null) throw new Error(`no ${name} in ${info}`);
  return m[1];
}

/** Bytes that differ at every position, so a misplaced chunk cannot go unnoticed. */
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

/** What every key should hold: written to the primary and checked on the others. */
class Expected {
  readonly values = new Map<string, Buffer>();
  readonly fields = new Map<string, Buffer>();

  async set(c: Redis, key: string, v: Buffer): Promise<void> {
    assert.equal(await c.set(key, v), 'OK');
    this.values.set(key, v);
  }

  async append(c: Redis, key: string, tail: Buffer): Promise<void> {
    const v = Buffer.concat([this.values.get(key)!, tail]);
    assert.equal(await c.append(key, tail), v.length);
    this.values.set(key, v);
  }

  async setrange(c: Redis, key: string, at: number, part: Buffer): Promise<void> {
    const v = Buffer.from(this.values.get(key)!);
    part.copy(v, at);
    assert.equal(await c.setrange(key, at, part), v.length);
    this.values.set(key, v);
  }

  async hset(c: Redis, ns: string, f: string, v: Buffer): Promise<void> {
    await c.hset(ns, f, v);
    this.fields.set(`${ns}\0${f}`, v);
  }

  async del(c: Redis, key: string): Promise<void> {
    assert.equal(await c.del(key), 1);
    this.values.delete(key);
  }

  /** Every value, byte for byte, and nothing else. */
  async check(c: Redis, where: string): Promise<void> {
    for (const [key, v] of this.values) {
      const got = await c.getBuffer(key);
      assert.ok(got !== null, `${where}: ${key} is missing`);
      assert.equal(got.length, v.length, `${where}: length of ${key}`);
      assert.ok(got.equals(v), `${where}: bytes of ${key} differ`);
      assert.equal(await c.strlen(key), v.length);
    }
    for (const [id, v] of this.fields) {
      const [ns, f] = id.split('\0');
      const got = await c.hgetBuffer(ns, f);
      assert.ok(got !== null && got.equals(v), `${where}: field ${f} of ${ns} differs`);
    }
    assert.equal(await c.dbsize(), this.values.size + new Set([...this.fields.keys()].map((k) => k.split('\0')[0])).size, `${where}: DBSIZE`);
  }
}

async function offsetsEqual(p: Redis, r: Redis): Promise<boolean> {
  const [pi, ri] = [await p.info('replication'), await r.info('replication')];
  return field(ri, 'master_link_status') === 'up' && field(pi, 'master_repl_offset') === field(ri, 'slave_repl_offset');
}

describe('replication of chunked values (over 1 MiB)', () => {
  let primary: TestServer;
  let replica: TestServer;
  let p: Redis;
  let r: Redis;
  const want = new Expected();

  before(async () => {
    // A small backlog: a chunked value counts for its size there (as in Redis' backlog).
    primary = await startOurs({ replication: { backlog_mb: 16 } });
    replica = await startOurs({ replication: { backlog_mb: 16 } });
    p = new Redis({ port: primary.port, host: '127.0.0.1', lazyConnect: true });
    r = new Redis({ port: replica.port, host: '127.0.0.1', lazyConnect: true });
    await p.connect();
    await r.connect();
  });
  after(async () => {
    p.disconnect();
    r.disconnect();
    await replica.close();
    await primary.close();
  });

  it('a full copy carries the chunk files: 0 B, 1 MiB, 1 MiB+1, 5 MiB, APPEND/SETRANGE on a chunked value, a shared blob, a hash field', async () => {
    await want.set(p, 'zero', Buffer.alloc(0));
    await want.set(p, 'one', pattern(MiB, 1));
    await want.set(p, 'over', pattern(MiB + 1, 2));
    await want.set(p, 'five', pattern(5 * MiB, 3));
    await want.set(p, 'app', pattern(2 * MiB, 4));
    await want.append(p, 'app', Buffer.from('xyz'));
    await want.set(p, 'sr', pattern(3 * MiB, 5));
    await want.setrange(p, 'sr', MiB + 7, Buffer.from('hello, chunk'));
    assert.equal(await p.copy('five', 'five-copy'), 1);
    want.values.set('five-copy', want.values.get('five')!);
    await want.hset(p, 'h', 'big', pattern(2 * MiB + 3, 6));
    // Overwritten and deleted chunked values: dead blobs the copy must not need.
    await want.set(p, 'gone', pattern(2 * MiB, 7));
    await want.del(p, 'gone');
    await want.set(p, 'over', pattern(MiB + 1, 8));
    assert.ok(primary.store.chunkStats().reduce((n, s) => n + s.blobs, 0) > 0, 'the primary stores chunks');

    // The replica's own data, chunked values included, is replaced by the copy.
    for (let i = 0; i < 20; i++) await r.set(`own:${i}`, `v${i}`);
    await r.set('own:big', pattern(3 * MiB, 9));
    await r.hset('own:h', 'f', pattern(MiB + 5, 10));
    const inodes = (): number[] => [0, 1, 2, 3].flatMap((i) => [statSync(join(replica.dataDir, `shard-${i}.db`)).ino, statSync(join(replica.dataDir, `shard-${i}.chunks.db`)).ino]);
    const before = inodes();

    assert.equal(await r.replicaof('127.0.0.1', String(primary.port)), 'OK');
    await waitFor('full copy and link up', () => offsetsEqual(p, r), 20_000);
    assert.equal(field(await r.info('replication'), 'full_syncs'), '1');
    await want.check(r, 'replica after the full copy');
    // Installed by renaming the copies into place (O(1) on the event loop), not by copying rows.
    const after = inodes();
    for (let i = 0; i < before.length; i++) assert.notEqual(after[i], before[i], `file ${i} was replaced`);
    assert.ok(!existsSync(join(replica.dataDir, 'replica-sync.tmp')), 'the download directory is removed');
    await waitFor('replaced files deleted', async () => readdirSync(join(replica.dataDir, 'replaced.tmp')).length === 0);
    // The copy holds the values in chunks too (not inline), and reads them without errors.
    assert.ok(replica.store.chunkStats().reduce((n, s) => n + s.blobs, 0) >= 6);
  });

  it('the stream carries chunked values by reference: the replica fetches their chunks', async () => {
    const before = Number(field(await p.info('replication'), 'master_repl_offset'));
    await want.set(p, 's:zero', Buffer.alloc(0));
    await want.set(p, 's:one', pattern(MiB, 11));
    await want.set(p, 's:over', pattern(MiB + 1, 12));
    await want.set(p, 's:five', pattern(5 * MiB, 13));
    const sent = Number(field(await p.info('replication'), 'master_repl_offset')) - before;
    // 1 MiB inline went into the stream; the 1 MiB+1 and 5 MiB values did not.
    assert.ok(sent < MiB + 64 * 1024, `stream grew by ${sent} bytes`);
    await want.append(p, 's:five', Buffer.from('tail'));
    await want.append(p, 'app', Buffer.from('more'));
    await want.setrange(p, 'sr', 2 * MiB + 5, Buffer.from('again'));
    await want.setrange(p, 'five', 0, Buffer.from('head'));
    await want.hset(p, 'h', 'big', pattern(MiB + 100, 14));
    await want.del(p, 'five-copy');
    await want.set(p, 'one', pattern(3 * MiB, 15));
    assert.equal(await p.wait(1, 10_000), 1);
    await want.check(r, 'replica after the stream');
    assert.ok(await waitFor('offsets equal', () => offsetsEqual(p, r)) >= 0);
    // Overwrites of a chunked value: 40 MiB of values through a 16 MiB backlog, no new copy, and
    // the primary holds back no more dead values than the backlog allows once they are acknowledged.
    const syncs = field(await r.info('replication'), 'full_syncs');
    for (let i = 0; i < 20; i++) await want.set(p, 'churn', pattern(2 * MiB, 100 + i));
    assert.equal(await p.wait(1, 10_000), 1);
    await p.set('tick', '1'); // an acknowledgement after the last value lets its pins go
    want.values.set('tick', Buffer.from('1'));
    assert.equal(await p.wait(1, 10_000), 1);
    await want.check(r, 'replica after the overwrites');
    assert.equal(field(await r.info('replication'), 'full_syncs'), syncs, 'no new copy');
    await primary.store.reclaimAll();
    const dead = primary.store.chunkStats().reduce((n, c) => n + c.dead, 0);
    assert.ok(dead <= 8, `${dead} dead values held back for replicas`);
    // READONLY (a cluster client's replica reads) changes nothing here.
    await r.call('READONLY').catch(() => undefined);
    await want.check(r, 'replica after READONLY');
  });

  it('after a failover the promoted replica serves them, and the old primary (with a write of its own) takes them back by a full copy', async () => {
    assert.equal(await r.replicaof('NO', 'ONE'), 'OK');
    await want.check(r, 'promoted replica');
    await want.append(r, 'five', Buffer.from('after-failover'));
    await want.set(r, 'new-big', pattern(2 * MiB + 1, 21));
    // A write the new primary never gets: the old primary's history diverged, it cannot continue.
    await p.set('diverged', pattern(MiB + 3, 23));
    // The old primary follows the new one: its own files, chunk files included, are replaced.
    assert.equal(await p.replicaof('127.0.0.1', String(replica.port)), 'OK');
    await waitFor('old primary caught up', () => offsetsEqual(r, p), 20_000);
    const pinfo = await p.info('replication');
    assert.equal(field(pinfo, 'full_syncs'), '1');
    assert.equal(field(pinfo, 'partial_syncs'), '0');
    assert.equal(await p.exists('diverged'), 0);
    await want.check(p, 'old primary after its full copy');
    await want.set(r, 'later', pattern(MiB + 9, 22));
    await want.del(r, 'over');
    assert.equal(await r.wait(1, 10_000), 1);
    await want.check(p, 'old primary after the stream');
    // Nothing left behind once reclamation has run: the same blobs on both sides, none dead.
    await replica.store.reclaimAll();
    await primary.store.reclaimAll();
    const blobs = (s: TestServer): number => s.store.chunkStats().reduce((n, c) => n + c.blobs, 0);
    const dead = (s: TestServer): number => s.store.chunkStats().reduce((n, c) => n + c.dead, 0);
    assert.equal(dead(primary), 0);
    assert.equal(blobs(primary), blobs(replica) - dead(replica));
  });
});
