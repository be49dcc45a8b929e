/**
 * A managed cluster: etcd (Debian's etcd-server, started here on loopback) holds membership and
 * the slot map; nodes register with leases, watch the map and answer CLUSTER and -MOVED from it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Etcd3 } from 'etcd3';
import { keySlot } from '../../src/cluster/slots.js';
import { nodeIdFor } from '../../src/cluster/state.js';
import { assignSlots, formatMap, initialMap, MapError } from '../../src/cluster/map.js';
import { etcdPrefix, readMap, updateMap } from '../../src/cluster/etcd.js';
import { clusterEpoch, clusterState, command, nodes, spawnManaged, startManaged, waitFor } from '../helpers/cluster.js';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import type { Child, TestServer } from '../helpers/servers.js';

const run = promisify(execFile);

describe('managed cluster on a one-member etcd', () => {
  let etcd: TestEtcd;
  let client: Etcd3;
  const servers: TestServer[] = [];
  const children: Child[] = [];
  const NAME = 'alpha';
  const prefix = etcdPrefix(NAME);
  const ports = (): number[] => servers.map((s) => s.port);

  before(async () => {
    etcd = await startEtcd(1);
    client = new Etcd3({ hosts: etcd.endpoints });
    for (const name of ['n1', 'n2', 'n3']) servers.push(await startManaged({ name, etcd: etcd.endpoints, clusterName: NAME }));
  });
  after(async () => {
    for (const c of children) {
      c.proc.kill('SIGKILL');
      await c.exited;
    }
    for (const s of servers) await s.close();
    client.close();
    await etcd.stop();
  });

  it('registered nodes without a map: masters without slots, cluster_state fail', async () => {
    await waitFor('three registered nodes', async () => (await nodes(ports()[0])).length === 3);
    const lines = await nodes(ports()[0]);
    assert.deepEqual(lines.map((l) => l.name).sort(), ['n1', 'n2', 'n3']);
    for (const l of lines) {
      assert.ok(l.flags.includes('master'));
      assert.equal(l.slots, '');
    }
    assert.equal(await clusterState(ports()[0]), 'fail');
    assert.match(await command(ports()[0], 'GET', 'foo'), /^-CLUSTERDOWN Hash slot not served\r\n$/);
    // Members and live leases are in etcd under the cluster's prefix.
    const alive = await client.getAll().prefix(`${prefix}/alive/`).keys();
    assert.deepEqual(alive.sort(), ['n1', 'n2', 'n3'].map((n) => `${prefix}/alive/${n}`));
  });

  it('the map written to etcd is what every node serves: SLOTS, NODES, INFO, MOVED', async () => {
    const map = await updateMap(client, prefix, (m) => {
      assert.equal(m, null);
      return initialMap(['n1', 'n2', 'n3']);
    });
    assert.equal(map.epoch, 1);
    await waitFor('epoch 1 everywhere', async () => {
      for (const p of ports()) if ((await clusterEpoch(p)) !== 1 || (await clusterState(p)) !== 'ok') return false;
      return true;
    });
    const slots = await Promise.all(ports().map((p) => command(p, 'CLUSTER', 'SLOTS')));
    assert.equal(new Set(slots).size, 1);
    const [p1, p2, p3] = ports();
    const expected =
      `*3\r\n` +
      [[0, 5460, p1, 'n1'], [5461, 10922, p2, 'n2'], [10923, 16383, p3, 'n3']]
        .map(([a, b, port, name]) => `*3\r\n:${a}\r\n:${b}\r\n*4\r\n$9\r\n127.0.0.1\r\n:${port}\r\n$40\r\n${nodeIdFor(String(name))}\r\n*2\r\n$8\r\nhostname\r\n$2\r\n${name}\r\n`)
        .join('');
    assert.equal(slots[0], expected);
    const info = await command(p2, 'CLUSTER', 'INFO');
    assert.match(info, /cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:3\r\ncluster_size:3\r\ncluster_current_epoch:1\r\ncluster_my_epoch:1\r\n/);
    const line = (await nodes(p1)).find((l) => l.name === 'n3')!;
    assert.equal(line.slots, '10923-16383');
    assert.equal(line.link, 'connected');
    // foo is in slot 12182: n3's.
    assert.equal(keySlot('foo'), 12182);
    assert.equal(await command(p1, 'SET', 'foo', 'bar'), `-MOVED 12182 127.0.0.1:${p3}\r\n`);
    assert.equal(await command(p3, 'SET', 'foo', 'bar'), '+OK\r\n');
    assert.equal(await command(p3, 'GET', 'foo'), 'bar');
    const shards = await command(p1, 'CLUSTER', 'SHARDS');
    assert.equal((shards.match(/\$6\r\nmaster\r\n/g) ?? []).length, 3);
    const check = await run('redis-cli', ['--cluster', 'check', `127.0.0.1:${p2}`]);
    assert.match(check.stdout, /\[OK\] All nodes agree about slots configuration\./);
    assert.match(check.stdout, /\[OK\] All 16384 slots covered\./);
  });

  it('map changes are compare-and-swap with epoch + 1: a writer with a stale revision loses', async () => {
    const before = await readMap(client, prefix);
    assert.ok(before.map !== null);
    // Someone else moves slots 0-99 to n2 first.
    await updateMap(client, prefix, (m) => assignSlots(m!, 0, 99, 'n2'));
    // A writer still holding the old revision cannot overwrite that change.
    const key = `${prefix}/map`;
    const stale = await client.if(key, 'Mod', '==', before.revision).then(client.put(key).value(formatMap({ ...before.map, epoch: before.map.epoch + 1 }))).commit();
    assert.equal(stale.succeeded, false);
    // A change that does not bump the epoch by one is refused before it is written.
    await assert.rejects(updateMap(client, prefix, (m) => ({ ...m!, epoch: m!.epoch + 5 })), MapError);
    await waitFor('epoch 2 everywhere', async () => {
      for (const p of ports()) if ((await clusterEpoch(p)) !== 2) return false;
      return true;
    });
    const [p1, p2] = ports();
    assert.equal((await nodes(p1)).find((l) => l.name === 'n2')!.slots, '0-99 5461-10922');
    const k = 'key:0-99'; // find a key in slots 0..99
    let key0 = k;
    for (let i = 0; keySlot(key0) > 99; i++) key0 = `k${i}`;
    assert.equal(await command(p1, 'GET', key0), `-MOVED ${keySlot(key0)} 127.0.0.1:${p2}\r\n`);
  });

  it('a node killed with kill -9 is failed once etcd expires its lease, for every node alike', async () => {
    const child = await spawnManaged({ name: 'n4', etcd: etcd.endpoints, clusterName: NAME, leaseTtlS: 2 });
    children.push(child);
    await waitFor('n4 registered', async () => (await nodes(ports()[0])).some((l) => l.name === 'n4'));
    await updateMap(client, prefix, (m) => {
      const withN4 = { ...m!, shards: [...m!.shards, { primary: 'n4', replicas: [], slots: [] }] };
      return assignSlots(withN4, 100, 199, 'n4');
    });
    await waitFor('n4 serves 100-199', async () => (await nodes(child.port)).find((l) => l.name === 'n4')?.slots === '100-199');
    let key = 'a';
    for (let i = 0; keySlot(key) < 100 || keySlot(key) > 199; i++) key = `n4key${i}`;
    assert.equal(await command(child.port, 'SET', key, 'v'), '+OK\r\n');
    const killedAt = Date.now();
    child.proc.kill('SIGKILL');
    await child.exited;
    const ms = await waitFor(
      'n4 failed on every node',
      async () => {
        for (const p of ports()) if (!(await nodes(p)).find((l) => l.name === 'n4')!.flags.includes('fail')) return false;
        return true;
      },
      15_000,
      50,
    );
    // The lease TTL is 2 s (etcd may round a short TTL up); not before the TTL, well within 3 TTLs.
    assert.ok(Date.now() - killedAt >= 1500, `failed after ${Date.now() - killedAt} ms`);
    assert.ok(ms < 8000);
    for (const p of ports()) {
      assert.equal(await clusterState(p), 'fail');
      assert.equal(await command(p, 'GET', key), '-CLUSTERDOWN Hash slot not served\r\n');
      assert.match(await command(p, 'CLUSTER', 'INFO'), /cluster_slots_fail:100\r\n/);
    }
  });
});

describe('managed cluster on a three-member etcd', () => {
  let etcd: TestEtcd;
  let client: Etcd3;
  const servers: TestServer[] = [];
  const NAME = 'beta';
  const prefix = etcdPrefix(NAME);

  before(async () => {
    etcd = await startEtcd(3);
    client = new Etcd3({ hosts: etcd.endpoints });
    for (const name of ['b1', 'b2']) servers.push(await startManaged({ name, etcd: etcd.endpoints, clusterName: NAME }));
    await updateMap(client, prefix, () => initialMap(['b1', 'b2']));
  });
  after(async () => {
    for (const s of servers) await s.close();
    client.close();
    await etcd.stop();
  });

  it('keeps serving, renewing leases and taking map changes with one etcd member killed', async () => {
    const [p1, p2] = servers.map((s) => s.port);
    await waitFor('map on both', async () => (await clusterState(p1)) === 'ok' && (await clusterState(p2)) === 'ok');
    await etcd.kill(0);
    // Longer than two lease TTLs: both nodes keep their leases through the surviving majority.
    await new Promise((r) => setTimeout(r, 4500));
    for (const p of [p1, p2]) {
      assert.equal(await clusterState(p), 'ok');
      for (const l of await nodes(p)) assert.ok(!l.flags.includes('fail'), `${l.name} flagged ${l.flags.join(',')}`);
    }
    const survivors = new Etcd3({ hosts: etcd.endpoints.slice(1) });
    try {
      await updateMap(survivors, prefix, (m) => assignSlots(m!, 0, 9, 'b2'));
    } finally {
      survivors.close();
    }
    await waitFor('epoch 2 on both', async () => (await clusterEpoch(p1)) === 2 && (await clusterEpoch(p2)) === 2);
    assert.equal((await nodes(p1)).find((l) => l.name === 'b2')!.slots, '0-9 8192-16383');
  });
});
