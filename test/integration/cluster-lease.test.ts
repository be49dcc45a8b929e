/**
 * No split brain: a managed primary that cannot renew its etcd lease stops accepting writes
 * (-CLUSTERDOWN The cluster is down) before etcd could let anyone replace it, keeps answering
 * reads, and takes writes again once it holds a lease. etcd is cut off by SIGSTOP (the process is
 * frozen: keepalives go unanswered, as with a partition), then resumed with SIGCONT.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { initialMap } from '../../src/cluster/map.js';
import { etcdPrefix, updateMap } from '../../src/cluster/etcd.js';
import { command, spawnManaged, waitFor } from '../helpers/cluster.js';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { type Child } from '../helpers/servers.js';

const LEASE_TTL_S = 2;

describe('a primary that cannot renew its lease', () => {
  let etcd: TestEtcd;
  let client: Etcd3;
  let node: Child;

  before(async () => {
    etcd = await startEtcd(1);
    client = new Etcd3({ hosts: etcd.endpoints });
    node = await spawnManaged({ name: 'p1', etcd: etcd.endpoints, clusterName: 'lease', leaseTtlS: LEASE_TTL_S });
    await updateMap(client, etcdPrefix('lease'), () => initialMap(['p1']));
    await waitFor('slots served', async () => /cluster_state:ok/.test(await command(node.port, 'CLUSTER', 'INFO')));
  });
  after(async () => {
    etcd.members[0].proc?.kill('SIGCONT');
    node.proc.kill('SIGKILL');
    await node.exited;
    client.close();
    await etcd.stop();
  });

  it('refuses writes with -CLUSTERDOWN within the lease TTL of losing etcd, serves reads, and writes again after', async () => {
    assert.equal(await command(node.port, 'SET', 'k', 'before'), '+OK\r\n');
    const stoppedAt = Date.now();
    etcd.members[0].proc!.kill('SIGSTOP');
    let fencedAfter = -1;
    try {
      for (let i = 0; Date.now() - stoppedAt < LEASE_TTL_S * 1000 + 3000; i++) {
        const reply = await command(node.port, 'SET', 'k', `during${i}`);
        if (reply === '-CLUSTERDOWN The cluster is down\r\n') {
          fencedAfter = Date.now() - stoppedAt;
          break;
        }
        assert.equal(reply, '+OK\r\n');
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(fencedAfter >= 0, 'the primary kept accepting writes without a lease');
      // etcd expires a lease no earlier than its TTL after the last keepalive it answered.
      assert.ok(fencedAfter <= LEASE_TTL_S * 1000, `fenced ${fencedAfter} ms after etcd stopped`);
      const last = await command(node.port, 'GET', 'k');
      assert.match(last, /^(before|during\d+)$/);
      assert.equal(await command(node.port, 'DEL', 'k'), '-CLUSTERDOWN The cluster is down\r\n');
      console.log(`# lease figures: writes refused ${fencedAfter} ms after etcd stopped (lease_ttl_s ${LEASE_TTL_S})`);
    } finally {
      etcd.members[0].proc!.kill('SIGCONT');
    }
    const resumedAfter = await waitFor('writes accepted again', async () => (await command(node.port, 'SET', 'k', 'after')) === '+OK\r\n', 20_000, 100);
    assert.equal(await command(node.port, 'GET', 'k'), 'after');
    console.log(`# lease figures: writes accepted again ${resumedAfter} ms after etcd resumed`);
  });
});
