/**
 * Replication between two servers: REPLICAOF with requirepass, a full copy then the stream,
 * -READONLY, ROLE, INFO replication, WAIT, resuming after a cut link from the offset, and a new
 * copy when the backlog no longer has it. The link runs through a relay the test can cut.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, Socket, type Server } from 'node:net';
import { Redis } from 'ioredis';
import { freePort, startOurs, type TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/cluster.js';

const PASS = 'replication-test-password';

/** A TCP relay on a fixed port that can be cut (connections dropped) and paused (refusing). */
async function relay(target: number): Promise<{ port: number; cut(): void; pause(): Promise<void>; resume(): Promise<void>; close(): Promise<void> }> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  const listen = (): Promise<void> =>
    new Promise((resolve) => {
      server = createServer((inbound) => {
        const out = new Socket();
        sockets.add(inbound).add(out);
        inbound.pipe(out);
        out.pipe(inbound);
        for (const s of [inbound, out]) {
          s.on('error', () => {});
          s.on('close', () => {
            inbound.destroy();
            out.destroy();
            sockets.delete(s);
          });
        }
        out.connect(target, '127.0.0.1');
      });
      server.listen(port, '127.0.0.1', () => resolve());
    });
  const cut = (): void => {
    for (const s of sockets) s.destroy();
  };
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      cut();
      if (server === null) return resolve();
      server.close(() => resolve());
      server = null;
    });
  await listen();
  return { port, cut, pause: stop, resume: listen, close: stop };
}

function field(info: string, name: string): string {
  const m = new RegExp(`^${name}:(.*)\\r$`, 'm').exec(info);
  if (m === null) throw new Error(`no ${name} in ${info}`);
  return m[1];
}

describe('replication: REPLICAOF, stream, READONLY, ROLE, WAIT, resume', () => {
  let primary: TestServer;
  let replica: TestServer;
  let link: Awaited<ReturnType<typeof relay>>;
  let p: Redis;
  let r: Redis;

  before(async () => {
    primary = await startOurs({ requirepass: PASS, replication: { backlog_mb: 1 } });
    replica = await startOurs({ requirepass: PASS, replication: { masterauth: PASS } });
    link = await relay(primary.port);
    p = new Redis({ port: primary.port, host: '127.0.0.1', password: PASS, lazyConnect: true });
    r = new Redis({ port: replica.port, host: '127.0.0.1', password: PASS, lazyConnect: true });
    await p.connect();
    await r.connect();
  });
  after(async () => {
    p.disconnect();
    r.disconnect();
    await replica.close();
    await primary.close();
    await link.close();
  });

  it('a replica takes a copy of what the primary had, then every later write in order', async () => {
    for (let i = 0; i < 500; i++) await p.set(`before:${i}`, `v${i}`);
    await p.hset('ns', 'f1', 'a', 'f2', 'b');
    await p.set('big', Buffer.alloc(300_000, 7));
    assert.equal(await r.replicaof('127.0.0.1', String(link.port)), 'OK');
    await waitFor('replica link up', async () => field(await r.info('replication'), 'master_link_status') === 'up');
    assert.equal(await r.get('before:499'), 'v499');
    assert.equal(await r.hget('ns', 'f2'), 'b');
    assert.equal((await r.getBuffer('big'))!.length, 300_000);
    for (let i = 0; i < 200; i++) await p.set(`after:${i}`, `w${i}`);
    await p.del('before:0');
    await p.expire('before:1', 1000);
    await p.hdel('ns', 'f1');
    await p.set('counter', '1');
    await p.set('counter', '42');
    await waitFor('stream applied', async () => (await r.get('counter')) === '42');
    assert.equal(await r.get('after:199'), 'w199');
    assert.equal(await r.exists('before:0'), 0);
    assert.ok((await r.ttl('before:1')) > 990);
    assert.deepEqual(await r.hgetall('ns'), { f2: 'b' });
    assert.equal(await r.dbsize(), await p.dbsize());
  });

  it('a replica never serves a cached value that a later batch changed', async () => {
    await p.set('hot', 'one');
    await waitFor('hot applied', async () => (await r.get('hot')) === 'one');
    const hits = async (): Promise<number> => Number(field(await r.info('blobasaur'), 'value_cache_hits'));
    const before = await hits();
    for (let i = 0; i < 3; i++) assert.equal(await r.get('hot'), 'one');
    assert.equal((await hits()) - before, 3, 'answered from the value cache');
    await p.set('hot', 'two');
    await waitFor('overwrite applied', async () => (await r.get('hot')) === 'two');
    await p.del('hot');
    await waitFor('delete applied', async () => (await r.get('hot')) === null);
    await p.set('hot', 'three');
    await p.pexpire('hot', 1);
    await waitFor('expiry applied', async () => (await r.get('hot')) === null);
  });

  it('the replica refuses writes with Redis\' -READONLY; ROLE and INFO replication on both sides', async () => {
    await assert.rejects(r.set('x', 'y'), /^ReplyError: READONLY You can't write against a read only replica\.$/);
    await assert.rejects(r.del('after:1'), /READONLY/);
    const pr = (await p.role()) as [string, number, [string, string, string][]];
    assert.equal(pr[0], 'master');
    await waitFor('replica acked the primary offset', async () => {
      const role = (await p.role()) as [string, number, [string, string, string][]];
      return role[2].length === 1 && Number(role[2][0][2]) === role[1];
    });
    const rr = (await r.role()) as [string, string, number, string, number];
    assert.deepEqual(rr.slice(0, 4), ['slave', '127.0.0.1', link.port, 'connected']);
    const pinfo = await p.info('replication');
    assert.equal(field(pinfo, 'role'), 'master');
    assert.equal(field(pinfo, 'connected_slaves'), '1');
    assert.match(field(pinfo, 'slave0'), new RegExp(`^ip=127\\.0\\.0\\.1,port=${replica.port},state=online,offset=\\d+,lag=0$`));
    const rinfo = await r.info('replication');
    assert.equal(field(rinfo, 'role'), 'slave');
    assert.equal(field(rinfo, 'master_port'), String(link.port));
    assert.equal(field(rinfo, 'slave_repl_offset'), field(pinfo, 'master_repl_offset'));
    assert.equal(field(rinfo, 'slave_lag_bytes'), '0');
    await assert.rejects(r.wait(1, 10), /WAIT cannot be used with replica instances/);
  });

  it('WAIT 1 returns once the replica has applied the write; WAIT 2 times out with 1', async () => {
    await p.set('waited', 'yes');
    assert.equal(await p.wait(1, 5000), 1);
    // Acknowledged means applied: the replica answers it now.
    assert.equal(await r.get('waited'), 'yes');
    const started = Date.now();
    assert.equal(await p.wait(2, 300), 1);
    assert.ok(Date.now() - started >= 290);
    await assert.rejects(p.wait(1, -1), /timeout is negative/);
  });

  it('a cut link resumes from the offset (no new copy); a lost offset takes a new copy', async () => {
    const syncs = (): Promise<string> => r.info('replication').then((i) => field(i, 'full_syncs'));
    assert.equal(await syncs(), '1');
    link.cut();
    for (let i = 0; i < 50; i++) await p.set(`cut:${i}`, `c${i}`);
    await waitFor('resumed', async () => (await r.get('cut:49')) === 'c49');
    assert.equal(await syncs(), '1');
    // Away while more than the 1 MiB backlog is written: the offset is gone, a new copy is taken.
    await link.pause();
    for (let i = 0; i < 40; i++) await p.set(`bulk:${i}`, Buffer.alloc(64 * 1024, i));
    await link.resume();
    await waitFor('new copy', async () => (await syncs()) === '2', 15_000);
    await waitFor('caught up', async () => (await r.dbsize()) === (await p.dbsize()));
    assert.equal((await r.getBuffer('bulk:39'))![0], 39);
  });

  it('REPLICAOF NO ONE makes the replica a primary that takes writes', async () => {
    assert.equal(await r.replicaof('NO', 'ONE'), 'OK');
    assert.equal(await r.set('mine', '1'), 'OK');
    assert.equal(((await r.role()) as string[])[0], 'master');
  });
});
