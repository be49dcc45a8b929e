/**
 * Automatic failover in a managed cluster: three primaries and three replicas (child processes)
 * on a one-member etcd. Writers and readers — ioredis Cluster, node-redis createCluster, redis-py
 * RedisCluster, and two plain connections to the primary (with and without WAIT 1) — run while
 * (a) the primary is killed with kill -9: its replica is promoted through etcd (epoch + 1), every
 * client follows -MOVED and writes again, writes acknowledged with WAIT 1 all survive; and while
 * (c) the killed primary comes back: it becomes a replica of the new one, and no client sees an
 * error. Figures printed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Etcd3 } from 'etcd3';
import { Redis, Cluster } from 'ioredis';
import { createCluster } from 'redis';
import { keySlot } from '../../src/cluster/slots.js';
import { initialMap } from '../../src/cluster/map.js';
import { etcdPrefix, updateMap } from '../../src/cluster/etcd.js';
import { python } from '../helpers/cli.js';
import { clusterEpoch, command, loadSummary, managedStarted, nodes, spawnManaged, startClusterLoad, waitFor, type LoadResult, type ManagedSpec } from '../helpers/cluster.js';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { freePort, tempDir, type Child } from '../helpers/servers.js';

const run = promisify(execFile);
const NAME = 'failover';
const NAMES = ['p1', 'p2', 'p3', 'r1', 'r2', 'r3'];

/** Keys whose slots are in 0..5460 (p1's range). */
function p1Keys(prefix: string, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) if (keySlot(`${prefix}${i}`) <= 5460) out.push(`${prefix}${i}`);
  return out;
}

describe('managed failover: 3 primaries + 3 replicas, kill -9 of a primary under load', () => {
  let etcd: TestEtcd;
  let client: Etcd3;
  const specs = new Map<string, ManagedSpec>();
  const dirs = new Map<string, string>();
  const procs = new Map<string, Child>();
  const port = (name: string): number => specs.get(name)!.port!;

  before(async () => {
    etcd = await startEtcd(1);
    client = new Etcd3({ hosts: etcd.endpoints });
    for (const name of NAMES) {
      specs.set(name, { name, etcd: etcd.endpoints, clusterName: NAME, leaseTtlS: Number(process.env.FAILOVER_LEASE_TTL_S ?? 2), port: await freePort() });
      dirs.set(name, tempDir('blobasaur-failover-'));
    }
    await Promise.all(NAMES.map(async (n) => procs.set(n, await spawnManaged(specs.get(n)!, dirs.get(n)))));
    await updateMap(client, etcdPrefix(NAME), () => initialMap(['p1', 'p2', 'p3'], ['r1', 'r2', 'r3']));
    await waitFor(
      'map on every node, replicas linked',
      () => managedStarted(NAMES.map((n) => ({ name: n, port: port(n), output: procs.get(n)!.output })), ['r1', 'r2', 'r3']),
      60_000,
      100,
    );
  });
  after(async () => {
    for (const p of procs.values()) {
      p.proc.kill('SIGKILL');
      await p.exited;
    }
    client.close();
    await etcd.stop();
  });

  it('CLUSTER NODES/SLOTS show each primary with its replica; redis-cli --cluster check is clean', async () => {
    const lines = await nodes(port('p2'));
    const byName = new Map(lines.map((l) => [l.name, l]));
    for (const [p, r] of [['p1', 'r1'], ['p2', 'r2'], ['p3', 'r3']]) {
      assert.ok(byName.get(p)!.flags.includes('master'));
      assert.ok(byName.get(r)!.flags.includes('slave'));
    }
    const text = await command(port('p2'), 'CLUSTER', 'NODES');
    assert.match(text, new RegExp(`,r1 slave ${byName.get('p1')!.id} `));
    const check = await run('redis-cli', ['--cluster', 'check', `127.0.0.1:${port('p1')}`]);
    assert.match(check.stdout, /1 slaves\./);
    assert.match(check.stdout, /\[OK\] All nodes agree about slots configuration\./);
    assert.match(check.stdout, /\[OK\] All 16384 slots covered\./);
    // Replica reads after READONLY (ioredis scaleReads), MOVED without it.
    const key = p1Keys('ro:', 1)[0];
    assert.equal(await command(port('p1'), 'SET', key, 'v'), '+OK\r\n');
    assert.equal(await command(port('p1'), 'WAIT', '1', '2000'), ':1\r\n');
    assert.match(await command(port('r1'), 'GET', key), /^-MOVED \d+ 127\.0\.0\.1:\d+\r\n$/);
    const ro = new Redis({ port: port('r1'), host: '127.0.0.1', lazyConnect: true });
    await ro.connect();
    assert.equal(await ro.call('READONLY'), 'OK');
    assert.equal(await ro.get(key), 'v');
    await assert.rejects(ro.set(key, 'x'), /MOVED/);
    ro.disconnect();
  });

  it('kill -9 of p1: r1 promoted, writes resume, WAIT-acknowledged writes all survive', async () => {
    const epochBefore = await clusterEpoch(port('p2'));
    const waited = p1Keys('w:', 100_000);
    const plain = p1Keys('n:', 100_000);
    const ackedWithWait: string[] = [];
    const ackedPlain: string[] = [];
    let stop = false;
    // Two writers straight to p1: one waits for the replica (WAIT 1), one does not.
    const writerWait = (async () => {
      const c = new Redis({ port: port('p1'), host: '127.0.0.1', maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true });
      c.on('error', () => {}); // the kill resets the connection: expected
      await c.connect();
      try {
        for (let i = 0; !stop && i < waited.length; i++) {
          await c.set(waited[i], String(i));
          if ((await c.wait(1, 1000)) === 1) ackedWithWait.push(waited[i]);
        }
      } catch {
        // p1 is gone
      } finally {
        c.disconnect();
      }
    })();
    const writerPlain = (async () => {
      const c = new Redis({ port: port('p1'), host: '127.0.0.1', maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true });
      c.on('error', () => {});
      await c.connect();
      try {
        for (let i = 0; !stop && i < plain.length; i++) {
          await c.set(plain[i], String(i));
          ackedPlain.push(plain[i]);
        }
      } catch {
        // p1 is gone
      } finally {
        c.disconnect();
      }
    })();
    // A reader through ioredis Cluster on the other shards keeps working throughout.
    const cluster = new Cluster([{ host: '127.0.0.1', port: port('p2') }], { clusterRetryStrategy: () => 100, slotsRefreshTimeout: 2000 });
    let readerErrors = 0;
    let reads = 0;
    const reader = (async () => {
      const deadline = Date.now() + 30_000;
      while (!stop && Date.now() < deadline) {
        try {
          await cluster.get(`other:${reads % 100}{x}`); // slot of {x}: 16287, p3's
          reads++;
        } catch {
          readerErrors++;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    // The three cluster clients write and read keys of p1's slots throughout.
    const load = await startClusterLoad(port('p2'), (prefix) => p1Keys(`a${prefix}`, 500));
    // At least 1.5 s of load, and enough writes acknowledged by both writers for the loss count to
    // mean something (a loaded machine gave only 9 WAIT-acknowledged writes in a fixed 1.5 s).
    await new Promise((r) => setTimeout(r, 1500));
    for (const deadline = Date.now() + 30_000; Date.now() < deadline && (ackedWithWait.length <= 20 || ackedPlain.length <= 20); ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const killedAt = Date.now();
    procs.get('p1')!.proc.kill('SIGKILL');
    await procs.get('p1')!.exited;
    // First successful write on p1's slots after the kill, through the cluster client.
    const probe = p1Keys('probe:', 1)[0];
    let firstWrite = 0;
    for (const deadline = Date.now() + 20_000; Date.now() < deadline; ) {
      try {
        await cluster.set(probe, 'after');
        firstWrite = Date.now();
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    stop = true;
    await Promise.all([writerWait, writerPlain, reader]);
    // The cluster clients get 5 s more after the first write on the new primary to write again.
    if (firstWrite > 0) await new Promise((r) => setTimeout(r, 5000));
    const results = await load.stop();
    assert.ok(firstWrite > 0, 'no write succeeded after the kill');
    const failoverMs = firstWrite - killedAt;
    assert.ok(failoverMs <= 10_000, `kill to first write took ${failoverMs} ms`);
    // r1 is the primary now, in a new map epoch, on every node.
    await waitFor('new epoch everywhere', async () => {
      for (const n of ['p2', 'p3', 'r1', 'r2', 'r3']) if ((await clusterEpoch(port(n))) <= epochBefore) return false;
      return true;
    });
    const lines = await nodes(port('p3'));
    assert.equal(lines.find((l) => l.name === 'r1')!.slots, '0-5460');
    assert.ok(lines.find((l) => l.name === 'p1')!.flags.includes('slave'));
    assert.ok(lines.find((l) => l.name === 'p1')!.flags.includes('fail'));
    // Loss accounting: every acknowledged key must be on the new primary.
    let lostWait = 0;
    for (const k of ackedWithWait) if ((await cluster.exists(k)) === 0) lostWait++;
    let lostPlain = 0;
    for (const k of ackedPlain) if ((await cluster.exists(k)) === 0) lostPlain++;
    // Each cluster client: first acknowledged write after the kill, and keys whose last
    // acknowledged value is not there (a write p1 acknowledged but had not replicated).
    const perClient: string[] = [];
    for (const r of results) {
      const after = r.okTimes.find((t) => t > killedAt);
      assert.ok(after !== undefined, `${r.client} never wrote after the kill: ${JSON.stringify(r.errors.slice(-3))}`);
      let lostLast = 0;
      for (const [k, v] of r.last) if ((await cluster.get(k)) !== v) lostLast++;
      perClient.push(`${r.client}: first write ${after - killedAt} ms after the kill, ${r.writes} writes, ${r.errors.length} errors, ${lostLast} of ${r.last.size} keys without their last acknowledged value`);
      assert.ok(after - killedAt <= 15_000, perClient[perClient.length - 1]);
      assert.ok(r.writes > 50, perClient[perClient.length - 1]);
    }
    cluster.disconnect();
    assert.ok(ackedWithWait.length > 20, `only ${ackedWithWait.length} WAIT-acknowledged writes`);
    assert.equal(lostWait, 0);
    console.log(
      `# failover figures: kill -9 to first write ${failoverMs} ms (lease_ttl_s ${specs.get("p1")!.leaseTtlS}); acknowledged with WAIT 1: ${ackedWithWait.length}, lost ${lostWait}; ` +
        `acknowledged without WAIT: ${ackedPlain.length}, lost ${lostPlain}; reader on other shards: ${reads} reads, ${readerErrors} errors; ${perClient.join('; ')}`,
    );
    assert.equal(readerErrors, 0);
  });

  it('the killed primary comes back as a replica of its replacement, with its data; no client sees an error', async () => {
    const load = await startClusterLoad(port('p3'), (prefix) => p1Keys(`c${prefix}`, 500));
    await new Promise((r) => setTimeout(r, 1000));
    const restartedAt = Date.now();
    procs.set('p1', await spawnManaged(specs.get('p1')!, dirs.get('p1')));
    await waitFor(
      'p1 replicating r1',
      async () => {
        const info = await command(port('p1'), 'INFO', 'replication');
        return /role:slave/.test(info) && new RegExp(`master_port:${port('r1')}`).test(info) && /master_link_status:up/.test(info);
      },
      20_000,
    );
    const backAfter = Date.now() - restartedAt;
    assert.match(await command(port('p1'), 'SET', 'x', '1'), /^-MOVED /);
    const probe = p1Keys('probe:', 1)[0];
    const ro = new Redis({ port: port('p1'), host: '127.0.0.1', lazyConnect: true });
    await ro.connect();
    await ro.call('READONLY');
    await waitFor('probe on p1', async () => (await ro.get(probe)) === 'after');
    ro.disconnect();
    const lines = await nodes(port('p2'));
    const r1 = lines.find((l) => l.name === 'r1')!;
    assert.match(await command(port('p2'), 'CLUSTER', 'NODES'), new RegExp(`,p1 slave ${r1.id} .* connected\\n`));
    const check = await run('redis-cli', ['--cluster', 'check', `127.0.0.1:${port('p2')}`]);
    assert.match(check.stdout, /\[OK\] All 16384 slots covered\./);
    assert.match(check.stdout, /\[OK\] All nodes agree about slots configuration\./);
    await new Promise((r) => setTimeout(r, 1000));
    const results: LoadResult[] = await load.stop();
    // Every client's last acknowledged values are on the primary and, after WAIT, on p1 too.
    assert.equal(await command(port('r1'), 'WAIT', '1', '5000'), ':1\r\n'); // p1, r1's one replica now
    const p1ro = new Redis({ port: port('p1'), host: '127.0.0.1', lazyConnect: true });
    await p1ro.connect();
    await p1ro.call('READONLY');
    let missing = 0;
    for (const r of results) {
      for (const [k, v] of r.last) {
        if ((await command(port('r1'), 'GET', k)) !== v) missing++;
        if ((await p1ro.get(k)) !== v) missing++;
      }
    }
    p1ro.disconnect();
    console.log(`# failover figures (c): p1 back as a replica ${backAfter} ms after its restart began; ${loadSummary(results)}; ${missing} values missing`);
    for (const r of results) {
      assert.ok(r.writes > 50, loadSummary(results));
      assert.deepEqual(r.errors.slice(0, 5), [], r.client);
    }
    assert.equal(missing, 0);
  });

  it('node-redis createCluster and redis-py RedisCluster read and write after the failover', async () => {
    const nr = createCluster({ rootNodes: [{ url: `redis://127.0.0.1:${port('p3')}` }] });
    await nr.connect();
    try {
      const key = p1Keys('nr:', 1)[0];
      assert.equal(await nr.set(key, 'node-redis'), 'OK');
      assert.equal(await nr.get(key), 'node-redis');
    } finally {
      await nr.quit();
    }
    const key = p1Keys('py:', 1)[0];
    const out = await python(
      `from redis.cluster import RedisCluster\nrc = RedisCluster(host='127.0.0.1', port=${port('p2')})\nrc.set('${key}', 'py')\nprint(rc.get('${key}').decode())\n`,
    );
    assert.equal(out, 'py\n');
  });
});
