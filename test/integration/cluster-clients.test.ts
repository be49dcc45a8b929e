/**
 * The client matrix of issue 5: three nodes started from TOML config files as child processes,
 * driven by redis-cli -c, redis-cli --cluster check, ioredis Cluster, node-redis createCluster and
 * redis-py RedisCluster; then one node is killed (SIGKILL) and restarted.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { createCluster } from 'redis';
import { keySlot } from '../../src/cluster/slots.js';
import { python } from '../helpers/cli.js';
import { clusterState, command, nodes, spawnNode, startNode, waitFor, type NodeSpec, type Timing } from '../helpers/cluster.js';
import { freePort, type Child, type TestServer } from '../helpers/servers.js';

const run = promisify(execFile);
const T: Timing = { intervalMs: 100, timeoutMs: 1000 };
const RANGES: [number, number][][] = [[[0, 5460]], [[5461, 10922]], [[10923, 16383]]];
const N = 1000;

async function cli(port: number, args: string[], input?: string): Promise<string> {
  const child = run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { maxBuffer: 64 * 1024 * 1024 });
  if (input !== undefined) child.child.stdin!.end(input);
  return (await child).stdout;
}

/** redis-cli -c output without its "-> Redirected to slot …" lines, and how many there were. */
function followed(out: string): { text: string; redirects: number } {
  const lines = out.split('\n');
  const kept = lines.filter((l) => !l.startsWith('-> Redirected to slot'));
  return { text: kept.join('\n'), redirects: lines.length - kept.length };
}

describe('cluster client matrix (three child-process nodes)', () => {
  const specs: NodeSpec[] = [];
  const children: (Child & { dir: string })[] = [];
  const ports = (): number[] => specs.map((s) => s.port!);

  before(async () => {
    const bus = [await freePort(), await freePort(), await freePort()];
    for (let i = 0; i < 3; i++) {
      // With a secret, as a production cluster runs: the clients see no difference.
      const cluster = { secret: 'client-matrix-secret-0123456789' };
      specs.push({ name: `node-${i + 1}`, slots: RANGES[i], busPort: bus[i], seeds: bus.filter((_, j) => j !== i), port: await freePort(), cluster });
    }
    children.push(...(await Promise.all(specs.map((s) => spawnNode(s, T)))));
    await waitFor('three nodes ok', async () => {
      for (const p of ports()) if ((await clusterState(p)) !== 'ok' || (await nodes(p)).length !== 3) return false;
      return true;
    });
  });
  after(async () => {
    for (const c of children) {
      c.proc.kill('SIGKILL');
      await c.exited;
    }
  });

  it('redis-cli -c follows MOVED for writes and reads', async () => {
    const keys = Array.from({ length: 200 }, (_, i) => `cli:${i}`);
    const out = followed(await cli(ports()[0], ['-c'], keys.map((k) => `SET ${k} v-${k}\n`).join('')));
    assert.equal(out.text, 'OK\n'.repeat(keys.length));
    assert.ok(out.redirects > 10);
    const got = followed(await cli(ports()[2], ['-c'], keys.map((k) => `GET ${k}\n`).join('')));
    assert.equal(got.text, keys.map((k) => `v-${k}\n`).join(''));
    assert.ok(got.redirects > 10);
    // Without -c the redirection is shown.
    const moved = keys.find((k) => keySlot(k) > 5460)!;
    assert.match(await cli(ports()[0], ['GET', moved]), /^MOVED \d+ 127\.0\.0\.1:\d+\n/);
  });

  it('redis-cli --cluster check: all slots covered, all nodes agree', async () => {
    const { stdout } = await run('redis-cli', ['--cluster', 'check', `127.0.0.1:${ports()[1]}`]);
    assert.match(stdout, /\[OK\] All nodes agree about slots configuration\./);
    assert.match(stdout, /\[OK\] All 16384 slots covered\./);
    for (const p of ports()) assert.match(stdout, new RegExp(`M: [0-9a-f]{40} 127\\.0\\.0\\.1:${p}\\n`));
  });

  it('ioredis Cluster: 1,000 keys over every node, hash-tag co-location', async () => {
    const c = new Redis.Cluster([{ host: '127.0.0.1', port: ports()[0] }]);
    try {
      await Promise.all(Array.from({ length: N }, (_, i) => c.set(`io:${i}`, `v${i}`)));
      const got = await Promise.all(Array.from({ length: N }, (_, i) => c.get(`io:${i}`)));
      assert.deepEqual(got, Array.from({ length: N }, (_, i) => `v${i}`));
      // Keys of every node's slots were written: each node holds some of them.
      const perNode = [0, 0, 0];
      for (let i = 0; i < N; i++) perNode[Math.min(2, Math.floor(keySlot(`io:${i}`) / 5461))]++;
      assert.ok(perNode.every((n) => n > 200), String(perNode));
      for (const p of ports()) assert.ok(Number((await command(p, 'DBSIZE')).slice(1)) > 0);
      // {tag} keys share a slot, so multi-key commands on them work.
      await c.set('{user:7}:a', '1');
      await c.set('{user:7}:b', '2');
      assert.equal(await c.exists('{user:7}:a', '{user:7}:b'), 2);
      assert.equal(await c.del('{user:7}:a', '{user:7}:b'), 2);
      await assert.rejects(c.del('io:1', 'io:2'), /CROSSSLOT/);
      assert.equal(await c.hset('io:ns', 'f', 'v'), 1);
      assert.equal(await c.hget('io:ns', 'f'), 'v');
    } finally {
      c.disconnect();
    }
  });

  it('node-redis createCluster: 1,000 keys over every node, hash tags', async () => {
    const c = createCluster({ rootNodes: [{ url: `redis://127.0.0.1:${ports()[1]}` }] });
    await c.connect();
    try {
      await Promise.all(Array.from({ length: N }, (_, i) => c.set(`nr:${i}`, `v${i}`)));
      const got = await Promise.all(Array.from({ length: N }, (_, i) => c.get(`nr:${i}`)));
      assert.deepEqual(got, Array.from({ length: N }, (_, i) => `v${i}`));
      assert.equal(await c.get('io:5'), 'v5'); // written by ioredis
      await c.set('{t}x', '1');
      await c.set('{t}y', '2');
      assert.equal(await c.exists(['{t}x', '{t}y']), 2);
      assert.equal(await c.hSet('nr:ns', 'f', 'v'), 1);
      assert.equal(await c.hGet('nr:ns', 'f'), 'v');
    } finally {
      await c.close();
    }
  });

  it('redis-py RedisCluster: 1,000 keys over every node, hash tags', async () => {
    const out = await python(
      `
import os
from redis.cluster import RedisCluster, ClusterNode
rc = RedisCluster(startup_nodes=[ClusterNode('127.0.0.1', int(os.environ['PORT']))])
for i in range(${N}):
    rc.set(f'py:{i}', f'v{i}')
ok = sum(1 for i in range(${N}) if rc.get(f'py:{i}') == f'v{i}'.encode())
rc.set('{py}a', '1'); rc.set('{py}b', '2')
print(ok, rc.exists('{py}a', '{py}b'), rc.get('nr:7').decode(), rc.hset('py:ns', 'f', 'v'), rc.hget('py:ns', 'f').decode())
rc.close()
`,
      { PORT: String(ports()[2]) },
    );
    assert.equal(out, `${N} 2 v7 1 v\n`);
  });

  it('a node killed with SIGKILL is reported fail, then connected after a restart', async () => {
    const victim = children[1];
    victim.proc.kill('SIGKILL');
    await victim.exited;
    const others = [ports()[0], ports()[2]];
    await waitFor('node-2 fail on the others', async () => {
      for (const p of others) {
        const n2 = (await nodes(p)).find((n) => n.name === 'node-2');
        if (n2 === undefined || !n2.flags.includes('fail')) return false;
      }
      return true;
    }, 3 * T.timeoutMs);
    for (const p of others) assert.equal(await clusterState(p), 'fail');
    const lost = Array.from({ length: N }, (_, i) => `io:${i}`).find((k) => keySlot(k) >= 5461 && keySlot(k) <= 10922)!;
    assert.equal(await command(ports()[0], 'GET', lost), '-CLUSTERDOWN Hash slot not served\r\n');

    children[1] = await spawnNode(specs[1], T, victim.dir);
    await waitFor('node-2 connected again', async () => {
      for (const p of others) {
        const n2 = (await nodes(p)).find((n) => n.name === 'node-2');
        if (n2 === undefined || n2.flags.join() !== 'master' || n2.link !== 'connected') return false;
        if ((await clusterState(p)) !== 'ok') return false;
      }
      return true;
    }, 3 * T.timeoutMs);
    // Its data survived, and clients reach it again.
    const c = new Redis.Cluster([{ host: '127.0.0.1', port: ports()[0] }]);
    try {
      assert.equal(await c.get(lost), lost.replace('io:', 'v'));
    } finally {
      c.disconnect();
    }
  });
});

describe('namespace_routing = "field": clients follow MOVED to the field\'s node', () => {
  let servers: TestServer[] = [];
  before(async () => {
    const bus = [await freePort(), await freePort(), await freePort()];
    servers = await Promise.all(
      [0, 1, 2].map((i) =>
        startNode(
          { name: `f${i + 1}`, slots: RANGES[i], busPort: bus[i], seeds: bus.filter((_, j) => j !== i), cluster: { namespace_routing: 'field' } },
          { intervalMs: 50, timeoutMs: 1000 },
        ),
      ),
    );
    await waitFor('field-mode cluster ok', async () => {
      for (const s of servers) if ((await clusterState(s.port)) !== 'ok' || (await nodes(s.port)).length !== 3) return false;
      return true;
    });
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it('one namespace spreads over every node (ioredis, redis-cli -c)', async () => {
    const c = new Redis.Cluster([{ host: '127.0.0.1', port: servers[0].port }]);
    try {
      for (let i = 0; i < 100; i++) assert.equal(await c.hset('big', `f${i}`, `v${i}`), 1);
      for (let i = 0; i < 100; i++) assert.equal(await c.hget('big', `f${i}`), `v${i}`);
    } finally {
      c.disconnect();
    }
    const fields = Array.from({ length: 100 }, (_, i) => `f${i}`);
    const owners = new Set(fields.map((f) => Math.min(2, Math.floor(keySlot(f) / 5461))));
    assert.equal(owners.size, 3);
    const out = followed(await cli(servers[2].port, ['-c'], fields.map((f) => `HGET big ${f}\n`).join('')));
    assert.equal(out.text, fields.map((f) => `${f.replace('f', 'v')}\n`).join(''));
    assert.ok(out.redirects > 10);
    // In field mode the fields are the keys of a slot.
    const owner = servers[Math.min(2, Math.floor(keySlot('f1') / 5461))];
    assert.equal(await command(owner.port, 'CLUSTER', 'COUNTKEYSINSLOT', String(keySlot('f1'))), ':1\r\n');
    assert.equal(await command(owner.port, 'CLUSTER', 'GETKEYSINSLOT', String(keySlot('f1')), '10'), '*1\r\n$2\r\nf1\r\n');
    // Several fields in different slots in one command cannot be served by one node.
    assert.equal(await command(servers[0].port, 'HDEL', 'big', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6'), `-CROSSSLOT Keys in request don't hash to the same slot\r\n`);
  });
});
