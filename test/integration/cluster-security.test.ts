/**
 * The cluster bus under attack (issue 18): forged, replayed and oversized gossip, node floods,
 * names that would add lines to CLUSTER NODES, a bus on the network without a secret, the secret
 * in the start-up log, and CLUSTER FORGET. Every forged byte is sent on 127.0.0.1, as an attacker
 * who can reach the bus port would send it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { busListenAddress } from '../../src/cluster/index.js';
import { keySlot } from '../../src/cluster/slots.js';
import { nodeIdFor } from '../../src/cluster/state.js';
import { configSchema } from '../../src/config/schema.js';
import {
  busExchange,
  capturingRelay,
  clusterState,
  command,
  forgedRecord,
  gossipField,
  gossipLine,
  nodes,
  startNode,
  waitFor,
  type NodeSpec,
  type Timing,
} from '../helpers/cluster.js';
import { RawClient, resp } from '../helpers/raw.js';
import { MAIN_JS, freePort, startOurs, startRedis, tempDir, type TestServer } from '../helpers/servers.js';

const T: Timing = { intervalMs: 50, timeoutMs: 600 };
const SECRET = 'test-secret-0123456789abcdef';

function keyIn(a: number, b: number, prefix = 'k'): string {
  for (let i = 0; ; i++) {
    const s = keySlot(`${prefix}${i}`);
    if (s >= a && s <= b) return `${prefix}${i}`;
  }
}

/** Runs the real CLI until it exits; its exit code and everything it printed. */
async function runCli(args: string[], timeoutMs = 10_000): Promise<{ code: number | null; out: string }> {
  const proc = spawn(process.execPath, [MAIN_JS, ...args], { cwd: tempDir(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
  clearTimeout(timer);
  return { code, out };
}

describe('cluster bus: where it listens and the secret', () => {
  it('the bus stays on loopback unless bus_addr says otherwise', () => {
    const parse = (c: Record<string, unknown>, addr = '0.0.0.0:6379') => busListenAddress(configSchema.parse({ addr, cluster: { enabled: true, ...c } }));
    assert.deepEqual(parse({}), { host: '127.0.0.1', port: 7000 });
    assert.deepEqual(parse({ port: 7100 }), { host: '127.0.0.1', port: 7100 });
    assert.deepEqual(parse({}, '[::1]:6379'), { host: '::1', port: 7000 });
    assert.deepEqual(parse({ bus_addr: '10.0.0.5:7200', secret: SECRET }), { host: '10.0.0.5', port: 7200 });
    assert.throws(() => configSchema.parse({ cluster: { bus_addr: '127.0.0.1:7200', port: 7300 } }), /port 7300 differs from the port of bus_addr/);
  });

  it('refuses to start a bus beyond loopback without a secret, and says how to set one', async () => {
    for (const bus of ['0.0.0.0:0', '[::]:0', '192.0.2.1:0']) {
      await assert.rejects(startOurs({ cluster: { enabled: true, bus_addr: bus } }), /beyond loopback, without a secret/, bus);
      const parsed = configSchema.safeParse({ cluster: { enabled: true, bus_addr: bus } });
      assert.equal(parsed.success, false);
      const issue = parsed.error!.issues[0] as { path: PropertyKey[]; params?: { allowed?: string } };
      assert.deepEqual(issue.path, ['cluster', 'secret']);
      assert.match(issue.params?.allowed ?? '', /openssl rand -hex 32/);
    }
    // A short secret is refused too: an HMAC key is only as strong as it is long.
    assert.throws(() => configSchema.parse({ cluster: { enabled: true, bus_addr: '0.0.0.0:7000', secret: 'sesame' } }), />=16 characters/);
    // With a secret the config is accepted (not started here: tests listen on 127.0.0.1 only).
    assert.doesNotThrow(() => configSchema.parse({ cluster: { enabled: true, bus_addr: '0.0.0.0:7000', secret: SECRET } }));
    // The real CLI: exit 2 with the reason on stderr, before anything listens.
    const dir = tempDir('blobasaur-bus-refused-');
    const file = join(dir, 'config.toml');
    const port = await freePort();
    writeFileSync(file, `addr = "127.0.0.1:${port}"\ndata_dir = "${join(dir, 'data')}"\n[cluster]\nenabled = true\nbus_addr = "0.0.0.0:0"\n`);
    const { code, out } = await runCli(['--config', file]);
    assert.equal(code, 2, out);
    assert.match(out, /cluster\.secret/);
    assert.match(out, /bus_addr = "127\.0\.0\.1:<port>"/);
  });

  it('the secret never appears in the log; the effective config shows it masked', async () => {
    const dir = tempDir('blobasaur-bus-log-');
    const file = join(dir, 'config.toml');
    const port = await freePort();
    const bus = await freePort();
    writeFileSync(
      file,
      // debug: the effective configuration is logged at that level (and must show the secret masked).
      `addr = "127.0.0.1:${port}"\ndata_dir = "${join(dir, 'data')}"\nlog_level = "debug"\n[cluster]\nenabled = true\nport = ${bus}\nsecret = "${SECRET}"\n` +
        '[[cluster.slot_ranges]]\nstart = 0\nend = 16383\n',
    );
    const proc = spawn(process.execPath, [MAIN_JS, '--config', file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve));
    try {
      await waitFor('the bus line', async () => out.includes('gossip bus listening'), 10_000);
      assert.equal(out.includes(SECRET), false, 'the secret never appears');
      const effective = out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg: string; config?: { cluster: Record<string, unknown> } })
        .find((l) => l.msg === 'effective configuration');
      assert.equal(effective?.config?.cluster.secret, '***');
    } finally {
      proc.kill('SIGTERM');
      assert.equal(await exited, 0);
    }
  });
});

describe('cluster bus: forged and replayed gossip (three nodes with a secret)', () => {
  const specs: NodeSpec[] = [];
  let servers: TestServer[] = [];
  let relay: Awaited<ReturnType<typeof capturingRelay>>;

  before(async () => {
    const bus = [await freePort(), await freePort(), await freePort()];
    // n1 reaches n2 first through a relay that records what n1 sends: captured gossip.
    relay = await capturingRelay(bus[1]);
    const ranges: [number, number][][] = [[[0, 5460]], [[5461, 10922]], [[10923, 16383]]];
    const seeds = [[relay.port], [bus[0], bus[2]], [bus[0], bus[1]]];
    for (let i = 0; i < 3; i++) specs.push({ name: `n${i + 1}`, slots: ranges[i], busPort: bus[i], seeds: seeds[i], cluster: { secret: SECRET } });
    servers = await Promise.all(specs.map((s) => startNode(s, T)));
    specs.forEach((s, i) => (s.port = servers[i].port));
    await waitFor('three nodes ok', async () => {
      for (const s of servers) if ((await clusterState(s.port)) !== 'ok' || (await nodes(s.port)).length !== 3) return false;
      return true;
    });
    await waitFor('a bound message captured', async () => relay.lines.some((l) => l.includes(`"to":"${nodeIdFor('n2')}"`)));
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await relay.close();
  });

  it('a forged ping without the MAC, with a wrong one, or with a stale timestamp changes nothing', async () => {
    const target = specs[0];
    const evil = forgedRecord('evil', { host: '127.0.0.1', port: 6666 });
    const ping = { t: 'ping', from: evil, nodes: [] };
    const key = keyIn(0, 5460);
    const authBefore = await gossipField(target.port!, 'gossip_auth_failures');
    const replaysBefore = await gossipField(target.port!, 'gossip_replays');
    const lines = [
      gossipLine(ping),
      gossipLine(ping, 'another-secret-0123456789'),
      `${'0'.repeat(64)} ${gossipLine(ping).slice(2)}`,
      `${'ab'} ${gossipLine(ping).slice(2)}`,
    ];
    for (const line of lines) assert.equal((await busExchange(target.busPort, line, 150)).reply, '', 'no pong for a forged ping');
    // Right MAC, but sent 31 s ago (or from a clock 31 s ahead): outside the window.
    for (const skew of [-31_000, 31_000]) {
      const r = await busExchange(target.busPort, gossipLine({ ...ping, ts: Date.now() + skew }, SECRET), 150);
      assert.equal(r.reply, '');
    }
    assert.equal(await gossipField(target.port!, 'gossip_auth_failures'), authBefore + 4);
    assert.equal(await gossipField(target.port!, 'gossip_replays'), replaysBefore + 2);
    assert.deepEqual((await nodes(target.port!)).map((n) => n.name).sort(), ['n1', 'n2', 'n3']);
    assert.equal(await command(target.port!, 'SET', key, 'v'), '+OK\r\n');
    assert.match(await command(target.port!, 'CLUSTER', 'INFO'), /cluster_current_epoch:0\r\n/);
  });

  it('a captured message replayed to its recipient or sent to another node is dropped', async () => {
    const bound = relay.lines.find((l) => l.includes(`"to":"${nodeIdFor('n2')}"`))!;
    const [n2, n3] = [specs[1], specs[2]];
    const r2 = await gossipField(n2.port!, 'gossip_replays');
    const r3 = await gossipField(n3.port!, 'gossip_replays');
    // n2 received it through the relay: its nonce is known there.
    assert.equal((await busExchange(n2.busPort, bound, 150)).reply, '');
    // n3 never saw it, but it is addressed to n2.
    assert.equal((await busExchange(n3.busPort, bound, 150)).reply, '');
    assert.equal(await gossipField(n2.port!, 'gossip_replays'), r2 + 1);
    assert.equal(await gossipField(n3.port!, 'gossip_replays'), r3 + 1);
  });

  it('replayed messages do not keep a dead node alive; an older incarnation never overwrites a newer one', async () => {
    const captured = [...relay.lines];
    const unbound = captured.find((l) => l.includes('"to":""'))!;
    assert.ok(unbound, 'the first ping to a seed is addressed to nobody');
    await servers[0].close();
    const start = Date.now();
    // Keep replaying everything captured to both survivors while waiting for the failure.
    let replaying = true;
    const replay = (async () => {
      while (replaying) {
        for (const line of captured.slice(-5)) for (const s of [specs[1], specs[2]]) await busExchange(s.busPort, line, 20);
      }
    })();
    try {
      await waitFor(
        'n1 flagged fail despite the replays',
        async () => {
          for (const s of [specs[1], specs[2]]) if (!(await nodes(s.port!)).find((n) => n.name === 'n1')!.flags.includes('fail')) return false;
          return true;
        },
        5000,
      );
    } finally {
      replaying = false;
      await replay;
    }
    assert.ok(Date.now() - start < T.timeoutMs + 2000);
    // n1 comes back as a new incarnation; its old, never-delivered ping is then stale at n3.
    servers[0] = await startNode({ ...specs[0], dataDir: servers[0].dataDir }, T);
    await waitFor('n1 back', async () => (await clusterState(specs[2].port!)) === 'ok');
    const stale = await gossipField(specs[2].port!, 'gossip_stale');
    assert.equal((await busExchange(specs[2].busPort, unbound, 150)).reply, '');
    assert.equal(await gossipField(specs[2].port!, 'gossip_stale'), stale + 1);
    assert.equal(await clusterState(specs[2].port!), 'ok');
  });
});

describe('cluster bus: floods and oversized input (one node, no secret, on loopback)', () => {
  let node: TestServer;
  let busPort: number;
  before(async () => {
    busPort = await freePort();
    node = await startNode({ name: 'solo', slots: [[0, 16383]], busPort, seeds: [] }, T);
  });
  after(async () => {
    await node?.close();
  });

  it('a node name or host with a newline cannot add a line to CLUSTER NODES', async () => {
    const fake = `evil\n${'f'.repeat(40)} 127.0.0.1:1@2,x myself,master - 0 0 0 connected 0-16383`;
    const malformed = await gossipField(node.port, 'gossip_malformed');
    for (const from of [
      { ...forgedRecord('x'), name: fake, id: nodeIdFor(fake) },
      forgedRecord('y', { host: '127.0.0.1\r\nfake' }),
      forgedRecord('z', { busHost: 'a b' }),
    ]) {
      await busExchange(busPort, gossipLine({ t: 'ping', from, nodes: [] }), 100);
    }
    assert.equal(await gossipField(node.port, 'gossip_malformed'), malformed + 3);
    assert.equal((await command(node.port, 'CLUSTER', 'NODES')).split('\n').filter((l) => l !== '').length, 1);
    // The config refuses such a node_id too.
    await assert.rejects(startOurs({ cluster: { enabled: true, node_id: 'a\nb', port: 0 } }), /node_id/);
    await assert.rejects(startOurs({ cluster: { enabled: true, node_id: 'a b', port: 0 } }), /node_id/);
  });

  it('a line over the size cap is cut off before it is buffered whole', async () => {
    const malformed = await gossipField(node.port, 'gossip_malformed');
    // 600 KiB without a newline: past the 512 KiB cap, so the node closes the connection.
    const r = await busExchange(busPort, Buffer.alloc(600 * 1024, 'a'), 3000);
    assert.equal(r.closedByServer, true);
    assert.equal(await gossipField(node.port, 'gossip_malformed'), malformed + 1);
    assert.equal(await command(node.port, 'PING'), '+PONG\r\n');
  });

  it('many connections sending 1 MiB without a newline: each cut off, bounded memory', async (t) => {
    const refused = await gossipField(node.port, 'gossip_connections_refused');
    const malformed = await gossipField(node.port, 'gossip_malformed');
    const rss0 = process.memoryUsage().rss;
    const chunk = Buffer.alloc(64 * 1024, 'a');
    const flood = Array.from(
      { length: 40 },
      () =>
        new Promise<void>((resolve) => {
          const s = new Socket();
          let sent = 0;
          const pump = (): void => {
            while (sent < 1024 * 1024 && !s.destroyed) {
              sent += chunk.length;
              if (!s.write(chunk)) return void s.once('drain', pump);
            }
          };
          s.on('error', () => {});
          s.on('close', () => resolve());
          s.setTimeout(8000, () => s.destroy());
          s.connect(busPort, '127.0.0.1', pump);
        }),
    );
    await Promise.all(flood);
    const grew = (process.memoryUsage().rss - rss0) / 2 ** 20;
    const cut = (await gossipField(node.port, 'gossip_malformed')) - malformed;
    const turnedAway = (await gossipField(node.port, 'gossip_connections_refused')) - refused;
    t.diagnostic(`40 x 1 MiB: ${cut} cut off at the line cap, ${turnedAway} refused at connect, rss +${grew.toFixed(1)} MiB`);
    // Every one was closed by the node: cut off at the cap, or refused by the connection caps.
    assert.equal(cut + turnedAway, 40);
    assert.ok(grew < 128, `rss grew ${grew} MiB`);
    assert.equal(await command(node.port, 'PING'), '+PONG\r\n');
  });

  it('connections that send nothing: 8 per address at a time, closed after 5 s', async () => {
    const refused = await gossipField(node.port, 'gossip_connections_refused');
    const silent = await Promise.all(
      Array.from(
        { length: 8 },
        () =>
          new Promise<{ socket: Socket; closed: Promise<number> }>((resolve) => {
            const socket = new Socket();
            socket.on('error', () => {});
            const closed = new Promise<number>((c) => socket.once('close', () => c(Date.now())));
            socket.connect(busPort, '127.0.0.1', () => resolve({ socket, closed }));
          }),
      ),
    );
    const opened = Date.now();
    try {
      await new Promise((r) => setTimeout(r, 100)); // all eight accepted by the node
      const ninth = await busExchange(busPort, '', 2000);
      assert.equal(ninth.closedByServer, true);
      assert.equal(await gossipField(node.port, 'gossip_connections_refused'), refused + 1);
      const closedAt = await Promise.all(silent.map((s) => s.closed));
      for (const at of closedAt) assert.ok(at - opened >= 4500 && at - opened < 8000, `closed after ${at - opened} ms`);
    } finally {
      for (const s of silent) s.socket.destroy();
    }
  });

  it('a flood of 3000 forged nodes: capped at 1000 known nodes, the node keeps answering', async (t) => {
    const client = await RawClient.connect(node.port);
    let worst = 0;
    let probing = true;
    const probe = (async () => {
      while (probing) {
        const t0 = Date.now();
        client.write(resp('PING'));
        await client.reply();
        worst = Math.max(worst, Date.now() - t0);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const rss0 = process.memoryUsage().rss;
    const t0 = Date.now();
    try {
      for (let m = 0; m < 3; m++) {
        const flood = Array.from({ length: 1000 }, (_, i) => forgedRecord(`flood-${m}-${i}`, { busPort: 1, epoch: m * 1000 + i }));
        const line = gossipLine({ t: 'ping', from: forgedRecord(`flooder-${m}`), nodes: flood });
        assert.ok(line.length < 512 * 1024, `${line.length} bytes`);
        await busExchange(busPort, line, 300);
      }
      await waitFor('the cap reached', async () => (await gossipField(node.port, 'known_nodes')) === 1000, 5000);
    } finally {
      probing = false;
      await probe;
      client.destroy();
    }
    const took = Date.now() - t0;
    const grew = (process.memoryUsage().rss - rss0) / 2 ** 20;
    const refusedNodes = await gossipField(node.port, 'gossip_nodes_refused');
    t.diagnostic(`3 x 1000 forged nodes absorbed in ${took} ms; worst PING ${worst} ms; rss +${grew.toFixed(1)} MiB; refused ${refusedNodes} records`);
    assert.match(await command(node.port, 'CLUSTER', 'INFO'), /cluster_known_nodes:1000\r\n/);
    assert.ok(refusedNodes >= 2000, String(refusedNodes));
    assert.ok(worst < 2000, `worst PING ${worst} ms`);
    assert.ok(grew < 256, `rss grew ${grew} MiB`);
  });
});

describe('CLUSTER FORGET', () => {
  let servers: TestServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it('errors are Redis 7 word for word', async () => {
    const redis = await startRedis(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(await freePort())]);
    const ours = await startOurs({ cluster: { enabled: true, node_id: 'forget-me-not', port: 0 } });
    try {
      const replies: string[][] = [];
      for (const port of [redis.port, ours.port]) {
        const c = await RawClient.connect(port);
        c.write(resp('CLUSTER', 'MYID'));
        const myid = (await c.reply()).split('\r\n')[1];
        const cmds = [['CLUSTER', 'FORGET', 'f'.repeat(40)], ['CLUSTER', 'FORGET', 'nosuchnode'], ['CLUSTER', 'FORGET'], ['CLUSTER', 'FORGET', myid]];
        for (const cmd of cmds) c.write(resp(...cmd));
        replies.push(await c.replies(cmds.length));
        c.destroy();
      }
      assert.deepEqual(replies[1], replies[0]);
    } finally {
      await ours.close();
      await redis.stop();
    }
  });

  it('drops a node, and gossip does not bring it back within the ban time', async () => {
    const bus = [await freePort(), await freePort()];
    servers = await Promise.all([
      startNode({ name: 'keep', slots: [[0, 8191]], busPort: bus[0], seeds: [bus[1]] }, T),
      startNode({ name: 'gone', slots: [[8192, 16383]], busPort: bus[1], seeds: [bus[0]] }, T),
    ]);
    await waitFor('both ok', async () => (await clusterState(servers[0].port)) === 'ok' && (await clusterState(servers[1].port)) === 'ok', 5000);
    assert.equal(await command(servers[0].port, 'CLUSTER', 'FORGET', nodeIdFor('gone')), '+OK\r\n');
    // Still gossiping: its pings are ignored while it is banned (60 s, as in Redis).
    await new Promise((r) => setTimeout(r, 10 * T.intervalMs));
    assert.deepEqual((await nodes(servers[0].port)).map((n) => n.name), ['keep']);
    assert.match(await command(servers[0].port, 'CLUSTER', 'INFO'), /cluster_state:fail\r\ncluster_slots_assigned:8192\r\n/);
    assert.equal(await command(servers[0].port, 'CLUSTER', 'FORGET', nodeIdFor('gone')), `-ERR Unknown node ${nodeIdFor('gone')}\r\n`);
  });
});
