/**
 * A managed cluster whose map is written while a primary is still starting (its client port may
 * answer before its etcd lease is granted, and an operator may start it later still): its replica
 * must wait for it, not take its place. A primary that never comes is replaced one lease TTL after
 * its replica first saw it missing. Each case starts the primary only after the map is written,
 * so the order the cluster tests' start hits by chance under load is made every time here.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { initialMap } from '../../src/cluster/map.js';
import { etcdPrefix, readMap, updateMap } from '../../src/cluster/etcd.js';
import { clusterEpoch, command, managedStarted, nodes, spawnManaged, waitFor } from '../helpers/cluster.js';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { type Child } from '../helpers/servers.js';

describe('managed cluster start: a map naming a primary that has not registered yet', () => {
  let etcd: TestEtcd;
  let client: Etcd3;
  const procs: Child[] = [];

  before(async () => {
    etcd = await startEtcd(1);
    client = new Etcd3({ hosts: etcd.endpoints });
  });
  after(async () => {
    for (const p of procs) {
      p.proc.kill('SIGKILL');
      await p.exited;
    }
    client.close();
    await etcd.stop();
  });

  it('the replica waits for the late primary and follows it; the map keeps epoch 1', async () => {
    // A long TTL, so that starting the primary under load surely fits in the replica's wait.
    const base = { etcd: etcd.endpoints, clusterName: 'late', leaseTtlS: 30 };
    const r1 = await spawnManaged({ name: 'r1', ...base });
    procs.push(r1);
    await updateMap(client, etcdPrefix('late'), () => initialMap(['p1'], ['r1']));
    await waitFor('r1 has the map', async () => (await clusterEpoch(r1.port)) >= 1);
    // A replica that takes over does so as soon as it sees the map (one etcd transaction).
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await readMap(client, etcdPrefix('late'))).map?.epoch, 1, 'r1 replaced a primary that had not started');
    const p1 = await spawnManaged({ name: 'p1', ...base });
    procs.push(p1);
    await waitFor(
      'p1 serving, r1 linked to it',
      () => managedStarted([{ name: 'p1', port: p1.port, output: p1.output }, { name: 'r1', port: r1.port, output: r1.output }], ['r1']),
      60_000,
      100,
    );
    const { map } = await readMap(client, etcdPrefix('late'));
    assert.deepEqual(map, initialMap(['p1'], ['r1']));
    assert.match(await command(r1.port, 'INFO', 'replication'), new RegExp(`role:slave\\r\\nmaster_host:127\\.0\\.0\\.1\\r\\nmaster_port:${p1.port}\\r\\n`));
    const lines = await nodes(r1.port);
    assert.deepEqual(lines.map((l) => [l.name, l.flags.includes('master') ? 'master' : 'slave', l.slots]).sort(), [['p1', 'master', '0-16383'], ['r1', 'slave', '']]);
  });

  it('a primary that never registers is replaced one lease TTL after its replica saw the map, not before', async () => {
    const ttlS = 2;
    const r2 = await spawnManaged({ name: 'r2', etcd: etcd.endpoints, clusterName: 'never', leaseTtlS: ttlS });
    procs.push(r2);
    const written = Date.now();
    await updateMap(client, etcdPrefix('never'), () => initialMap(['p2'], ['r2']));
    let promotedAfter = -1;
    await waitFor(
      'r2 promoted in etcd',
      async () => {
        if ((await readMap(client, etcdPrefix('never'))).map?.epoch !== 2) return false;
        promotedAfter = Date.now() - written;
        return true;
      },
      60_000,
      50,
    );
    assert.ok(promotedAfter >= ttlS * 1000, `r2 took over ${promotedAfter} ms after the map named p2, within the lease TTL`);
    await waitFor('r2 serves every slot', async () => /cluster_state:ok/.test(await command(r2.port, 'CLUSTER', 'INFO')), 30_000, 100);
    assert.match(await command(r2.port, 'INFO', 'replication'), /role:master/);
    console.log(`# start-order figures: a never-registered primary replaced ${promotedAfter} ms after the map (lease_ttl_s ${ttlS})`);
  });
});
