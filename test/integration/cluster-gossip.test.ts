/**
 * Gossip membership: convergence from seeds, failure detection and recovery, slot-claim conflicts,
 * the shared secret, and malformed gossip. Nodes run in this process with short intervals.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { keySlot } from '../../src/cluster/slots.js';
import { clusterState, command, nodes, startNode, waitFor, type NodeSpec, type Timing } from '../helpers/cluster.js';
import { freePort, type TestServer } from '../helpers/servers.js';

const T: Timing = { intervalMs: 50, timeoutMs: 600 };
const RANGES: [number, number][][] = [[[0, 5460]], [[5461, 10922]], [[10923, 16383]]];

/** A key whose slot is in [a, b]. */
function keyIn(a: number, b: number, prefix = 'k'): string {
  for (let i = 0; ; i++) {
    const s = keySlot(`${prefix}${i}`);
    if (s >= a && s <= b) return `${prefix}${i}`;
  }
}

async function threeNodes(extra: Record<string, unknown> = {}): Promise<{ specs: NodeSpec[]; servers: TestServer[] }> {
  const bus = [await freePort(), await freePort(), await freePort()];
  const specs: NodeSpec[] = [0, 1, 2].map((i) => ({
    name: `node-${i + 1}`,
    slots: RANGES[i],
    busPort: bus[i],
    seeds: bus.filter((_, j) => j !== i),
    cluster: extra,
  }));
  const servers = await Promise.all(specs.map((s) => startNode(s, T)));
  specs.forEach((s, i) => (s.port = servers[i].port));
  return { specs, servers };
}

async function allOk(servers: TestServer[]): Promise<boolean> {
  for (const s of servers) {
    if ((await clusterState(s.port)) !== 'ok') return false;
    if ((await nodes(s.port)).length !== servers.length) return false;
  }
  return true;
}

describe('gossip: three nodes', () => {
  let specs: NodeSpec[];
  let servers: TestServer[];
  let converged: number;
  before(async () => {
    ({ specs, servers } = await threeNodes());
    converged = await waitFor('convergence', () => allOk(servers), 5000);
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it('converges to one view within a few intervals', async (t) => {
    t.diagnostic(`converged in ${converged} ms (gossip interval ${T.intervalMs} ms)`);
    // Typically 2-4 intervals; the bound leaves room for a loaded CI machine.
    assert.ok(converged < 30 * T.intervalMs, `took ${converged} ms`);
    const views = await Promise.all(servers.map(async (s) => (await nodes(s.port)).map((n) => `${n.id} ${n.addr} ${n.name} ${n.slots}`).sort()));
    assert.deepEqual(views[1], views[0]);
    assert.deepEqual(views[2], views[0]);
    // CLUSTER INFO's fields in Redis 7's order, per-type message counters before each total.
    const info = await command(servers[0].port, 'CLUSTER', 'INFO');
    assert.deepEqual(
      info.split('\r\n').map((l) => l.split(':')[0]),
      [
        'cluster_state', 'cluster_slots_assigned', 'cluster_slots_ok', 'cluster_slots_pfail', 'cluster_slots_fail',
        'cluster_known_nodes', 'cluster_size', 'cluster_current_epoch', 'cluster_my_epoch',
        'cluster_stats_messages_ping_sent', 'cluster_stats_messages_pong_sent', 'cluster_stats_messages_sent',
        'cluster_stats_messages_ping_received', 'cluster_stats_messages_pong_received', 'cluster_stats_messages_received',
        'total_cluster_links_buffer_limit_exceeded', '',
      ],
    );
    assert.match(info, /cluster_known_nodes:3\r\ncluster_size:3\r\n/);
    for (const [i, s] of servers.entries()) {
      const me = (await nodes(s.port)).find((n) => n.flags.includes('myself'))!;
      assert.equal(me.addr, `127.0.0.1:${s.port}@${specs[i].busPort}`);
      assert.equal(me.name, `node-${i + 1}`);
    }
  });

  it('MOVED to the owner, every node agrees', async () => {
    const key = keyIn(5461, 10922);
    const slot = keySlot(key);
    for (const i of [0, 2]) assert.equal(await command(servers[i].port, 'SET', key, 'v'), `-MOVED ${slot} 127.0.0.1:${servers[1].port}\r\n`);
    assert.equal(await command(servers[1].port, 'SET', key, 'v'), '+OK\r\n');
    assert.equal(await command(servers[1].port, 'GET', key), 'v');
    // Namespaced: routed by the namespace.
    const ns = keyIn(0, 5460, 'ns');
    assert.equal(await command(servers[1].port, 'HSET', ns, 'f', 'v'), `-MOVED ${keySlot(ns)} 127.0.0.1:${servers[0].port}\r\n`);
  });

  it('a silent node is flagged fail within node_timeout_ms, then connected again when it returns', async (t) => {
    const key = keyIn(5461, 10922);
    await servers[1].close();
    const failedAfter = await waitFor(
      'node-2 flagged fail',
      async () => {
        for (const i of [0, 2]) {
          const n2 = (await nodes(servers[i].port)).find((n) => n.name === 'node-2')!;
          if (!n2.flags.includes('fail')) return false;
        }
        return true;
      },
      5000,
      10,
    );
    // Flagged once the node timeout has run out (counted from its last message), plus one
    // failure check; the slack is for a loaded CI machine.
    t.diagnostic(`flagged fail ${failedAfter} ms after the stop (node_timeout_ms ${T.timeoutMs})`);
    assert.ok(failedAfter <= T.timeoutMs + 500, `flagged after ${failedAfter} ms`);
    for (const i of [0, 2]) {
      assert.equal(await clusterState(servers[i].port), 'fail');
      const info = await command(servers[i].port, 'CLUSTER', 'INFO');
      assert.match(info, /cluster_slots_fail:5462\r\n/);
      assert.equal(await command(servers[i].port, 'GET', key), '-CLUSTERDOWN Hash slot not served\r\n');
      const n2 = (await nodes(servers[i].port)).find((n) => n.name === 'node-2')!;
      assert.equal(n2.link, 'disconnected');
    }
    // The other slots are still served.
    assert.equal(await command(servers[0].port, 'SET', keyIn(0, 5460), 'x'), '+OK\r\n');

    servers[1] = await startNode({ ...specs[1], dataDir: servers[1].dataDir }, T);
    await waitFor('node-2 ok again', () => allOk(servers), 5000);
    // The link comes back at the next dial after the failed ones' back-off (two intervals).
    await waitFor(
      'node-2 connected again',
      async () => {
        for (const i of [0, 2]) if ((await nodes(servers[i].port)).find((n) => n.name === 'node-2')!.link !== 'connected') return false;
        return true;
      },
      2000,
    );
    for (const i of [0, 2]) {
      const n2 = (await nodes(servers[i].port)).find((n) => n.name === 'node-2')!;
      assert.deepEqual(n2.flags, ['master']);
    }
    assert.equal(await command(servers[1].port, 'GET', key), 'v');
  });

  it('malformed gossip never crashes a node and is counted', async () => {
    const target = specs[0].busPort;
    const send = (data: string | Buffer) =>
      new Promise<void>((resolve) => {
        const s = new Socket();
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.connect(target, '127.0.0.1', () => {
          s.write(data);
          setTimeout(() => s.destroy(), 50);
        });
      });
    await send('garbage\n');
    await send('- {not json\n');
    await send('- {"t":"ping","from":{"id":"x"},"nodes":[]}\n');
    await send('- [1,2,3]\n- null\n- "x"\n');
    await send(Buffer.from([0xff, 0xfe, 0x00, 0x0a, 0x80, 0x0a]));
    await send(Buffer.alloc(1024 * 1024 + 10, 'a')); // an endless line
    await send('- {"t":"ping","from":{"id":"' + 'a'.repeat(40) + '","name":"x","host":"h","port":1,"busPort":1,"slots":[[0,16383]],"inc":1,"ver":0},"nodes":[]}\n');
    assert.equal(await command(servers[0].port, 'PING'), '+PONG\r\n');
    const info = await command(servers[0].port, 'INFO', 'gossip');
    const malformed = Number(/gossip_malformed:(\d+)/.exec(info)?.[1]);
    assert.ok(malformed >= 8, info);
    assert.equal(await clusterState(servers[0].port), 'ok');
    assert.equal((await nodes(servers[0].port)).length, 3);
  });
});

describe('gossip: slot claim conflicts', () => {
  let servers: TestServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it('two nodes claiming one slot: the higher config_epoch serves it on both, logged and shown', async () => {
    const bus = [await freePort(), await freePort()];
    servers = await Promise.all([
      startNode({ name: 'a', slots: [[0, 10000]], busPort: bus[0], seeds: [bus[1]] }, T),
      startNode({ name: 'b', slots: [[9000, 16383]], busPort: bus[1], seeds: [bus[0]], cluster: { config_epoch: 2 } }, T),
    ]);
    await waitFor('both nodes ok', () => allOk(servers), 5000);
    const both = keyIn(9000, 10000);
    const onlyA = keyIn(0, 8999);
    for (const [i, s] of servers.entries()) {
      // Settled the same way on both nodes: b (epoch 2) serves 9000-10000, nothing is down.
      assert.equal(await clusterState(s.port), 'ok');
      const info = await command(s.port, 'INFO', 'gossip');
      assert.match(info, /slot_conflicts:1001\r\n/);
      assert.match(info, /slot_conflict_ranges:9000-10000 \(b over a\)\r\n/);
      const view = (await nodes(s.port)).map((n) => `${n.name} ${n.slots}`).sort();
      assert.deepEqual(view, ['a 0-8999', 'b 9000-16383']);
      const cinfo = await command(s.port, 'CLUSTER', 'INFO');
      assert.match(cinfo, /cluster_current_epoch:2\r\n/);
      assert.match(cinfo, new RegExp(`cluster_my_epoch:${i === 0 ? 0 : 2}\r\n`));
      const epochs = (await command(s.port, 'CLUSTER', 'NODES')).split('\n').filter((l) => l !== '').map((l) => `${l.split(' ')[1].split(',')[1]}:${l.split(' ')[6]}`).sort();
      assert.deepEqual(epochs, ['a:0', 'b:2']);
      const slots = await command(s.port, 'CLUSTER', 'SLOTS');
      assert.match(slots, /^\*2\r\n\*3\r\n:0\r\n:8999\r\n.*\*3\r\n:9000\r\n:16383\r\n/s);
    }
    assert.equal(await command(servers[0].port, 'GET', both), `-MOVED ${keySlot(both)} 127.0.0.1:${servers[1].port}\r\n`);
    assert.equal(await command(servers[1].port, 'SET', both, 'v'), '+OK\r\n');
    assert.equal(await command(servers[1].port, 'GET', onlyA), `-MOVED ${keySlot(onlyA)} 127.0.0.1:${servers[0].port}\r\n`);
  });
});

describe('gossip: shared secret', () => {
  let servers: TestServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it('nodes with the secret form a cluster; messages without it are dropped and counted', async () => {
    const bus = [await freePort(), await freePort(), await freePort()];
    const seeds = (i: number) => bus.filter((_, j) => j !== i);
    servers = await Promise.all([
      startNode({ name: 's1', slots: [[0, 8191]], busPort: bus[0], seeds: seeds(0), cluster: { secret: 'sesame-open-up-1234' } }, T),
      startNode({ name: 's2', slots: [[8192, 16383]], busPort: bus[1], seeds: seeds(1), cluster: { secret: 'sesame-open-up-1234' } }, T),
      startNode({ name: 'intruder', slots: [[0, 100]], busPort: bus[2], seeds: seeds(2), cluster: { secret: 'wrong-secret-4567890' } }, T),
    ]);
    await waitFor('s1 and s2 ok', async () => (await clusterState(servers[0].port)) === 'ok' && (await clusterState(servers[1].port)) === 'ok', 5000);
    await waitFor('auth failures counted', async () => /gossip_auth_failures:[1-9]/.test(await command(servers[0].port, 'INFO', 'gossip')), 5000);
    await new Promise((r) => setTimeout(r, 4 * T.intervalMs));
    for (const s of servers.slice(0, 2)) {
      const names = (await nodes(s.port)).map((n) => n.name).sort();
      assert.deepEqual(names, ['s1', 's2']);
    }
    assert.deepEqual((await nodes(servers[2].port)).map((n) => n.name), ['intruder']);
  });
});

describe('gossip: a seed list that includes the node itself', () => {
  it('the node skips itself and still joins the others', async () => {
    const bus = [await freePort(), await freePort()];
    const servers = await Promise.all([
      startNode({ name: 'm1', slots: [[0, 8191]], busPort: bus[0], seeds: bus }, T),
      startNode({ name: 'm2', slots: [[8192, 16383]], busPort: bus[1], seeds: bus }, T),
    ]);
    try {
      await waitFor('both ok', async () => (await clusterState(servers[0].port)) === 'ok' && (await clusterState(servers[1].port)) === 'ok', 5000);
      await new Promise((r) => setTimeout(r, 3 * T.intervalMs));
      for (const s of servers) {
        assert.deepEqual((await nodes(s.port)).map((n) => n.name).sort(), ['m1', 'm2']);
        assert.match(await command(s.port, 'CLUSTER', 'INFO'), /cluster_known_nodes:2\r\n/);
      }
    } finally {
      await Promise.all(servers.map((s) => s.close()));
    }
  });
});
