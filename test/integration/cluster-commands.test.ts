/**
 * CLUSTER commands and routing errors on one node, byte for byte against a real redis-server
 * running with --cluster-enabled and the same slots, name and ports.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, resp } from '../helpers/raw.js';
import { freePort, startOurs, startRedis, type RedisServer, type TestServer } from '../helpers/servers.js';

describe('CLUSTER commands against redis-server --cluster-enabled', () => {
  let ours: TestServer;
  let plain: TestServer;
  let redis: RedisServer;
  let redisBus: number;
  let ourBus: number;
  let redisId: string;
  let ourId: string;

  before(async () => {
    redisBus = await freePort();
    ourBus = await freePort();
    redis = await startRedis([
      '--cluster-enabled', 'yes',
      '--cluster-config-file', 'nodes.conf',
      '--cluster-port', String(redisBus),
      '--cluster-announce-ip', '127.0.0.1',
      '--cluster-announce-hostname', 'node-a',
      // As the issue asks: only slots nobody serves are refused, the others keep working.
      '--cluster-require-full-coverage', 'no',
      // Redis waits a node timeout (at least 500 ms) before serving after its state turns ok.
      '--cluster-node-timeout', '500',
    ]);
    ours = await startOurs({
      cluster: { enabled: true, node_id: 'node-a', port: ourBus, slot_ranges: [{ start: 0, end: 5460 }], slots: [9000] },
    });
    plain = await startOurs();
    const r = await RawClient.connect(redis.port);
    r.write(resp('CLUSTER', 'ADDSLOTSRANGE', '0', '5460'));
    r.write(resp('CLUSTER', 'ADDSLOTS', '9000'));
    r.write(resp('CLUSTER', 'MYID'));
    const [, , id] = await r.replies(3);
    redisId = id.split('\r\n')[1];
    r.destroy();
    const o = await RawClient.connect(ours.port);
    o.write(resp('CLUSTER', 'MYID'));
    ourId = (await o.reply()).split('\r\n')[1];
    o.destroy();
    // Redis serves once its cron has seen the slots and the rejoin delay has passed.
    const deadline = Date.now() + 5000;
    const probe = await RawClient.connect(redis.port);
    for (;;) {
      probe.write(resp('GET', 'b'));
      if ((await probe.reply()) === '$-1\r\n') break;
      if (Date.now() > deadline) throw new Error('redis-server cluster never became ready');
      await new Promise((res) => setTimeout(res, 50));
    }
    probe.destroy();
  });
  after(async () => {
    await ours?.close();
    await plain?.close();
    await redis?.stop();
  });

  /** Redis' raw reply with its id and ports replaced by ours (same lengths, so same framing). */
  function normalized(raw: string): string {
    // Our node listens on an ephemeral port like Redis', so the digit counts match.
    return raw
      .replaceAll(redisId, ourId)
      .replaceAll(String(redisBus), String(ourBus))
      .replaceAll(String(redis.port), String(ours.port));
  }

  /** A bulk or verbatim reply with its payload changed and its length recomputed. */
  function rebulk(raw: string, f: (payload: string) => string): string {
    const m = /^([$=])(\d+)\r\n/.exec(raw);
    assert.ok(m, raw);
    const payload = f(raw.slice(m[0].length, m[0].length + Number(m[2])));
    return `${m[1]}${Buffer.byteLength(payload)}\r\n${payload}\r\n`;
  }

  async function both(cmds: string[][], proto: 2 | 3 = 2): Promise<{ theirs: string[]; mine: string[] }> {
    const out: string[][] = [];
    for (const port of [redis.port, ours.port]) {
      const c = await RawClient.connect(port);
      if (proto === 3) {
        c.write(resp('HELLO', '3'));
        await c.reply();
      }
      for (const cmd of cmds) c.write(resp(...cmd));
      out.push(await c.replies(cmds.length));
      c.destroy();
    }
    return { theirs: out[0].map(normalized), mine: out[1] };
  }

  it('HELLO says mode cluster, as redis-server in cluster mode does', async () => {
    const { theirs, mine } = await both([['HELLO', '2']]);
    for (const reply of [theirs[0], mine[0]]) assert.ok(reply.includes('$4\r\nmode\r\n$7\r\ncluster\r\n'), reply);
  });

  it('node ids are 40 hex characters, stable for a node_id', async () => {
    assert.match(ourId, /^[0-9a-f]{40}$/);
    const again = await startOurs({ cluster: { enabled: true, node_id: 'node-a', port: 0 } });
    try {
      const c = await RawClient.connect(again.port);
      c.write(resp('CLUSTER', 'MYID'));
      assert.equal((await c.reply()).split('\r\n')[1], ourId);
      c.destroy();
    } finally {
      await again.close();
    }
  });

  it('advertise_addr is the address clients are given', async () => {
    const adv = await startOurs({
      cluster: { enabled: true, node_id: 'adv', port: 0, advertise_addr: '10.1.2.3:7777', slot_ranges: [{ start: 0, end: 16383 }] },
    });
    try {
      const c = await RawClient.connect(adv.port);
      c.write(resp('CLUSTER', 'NODES'));
      c.write(resp('CLUSTER', 'SLOTS'));
      const [nodesReply, slotsReply] = await c.replies(2);
      assert.match(nodesReply, / 10\.1\.2\.3:7777@\d+,adv myself,master - 0 0 0 connected 0-16383\n/);
      assert.match(slotsReply, /^\*1\r\n\*3\r\n:0\r\n:16383\r\n\*4\r\n\$8\r\n10\.1\.2\.3\r\n:7777\r\n/);
      c.destroy();
    } finally {
      await adv.close();
    }
  });

  for (const proto of [2, 3] as const) {
    it(`INFO, NODES, SLOTS, SHARDS, MYID are byte-identical (RESP${proto})`, async () => {
      const cmds = [['CLUSTER', 'INFO'], ['CLUSTER', 'NODES'], ['CLUSTER', 'SLOTS'], ['CLUSTER', 'SHARDS'], ['CLUSTER', 'MYID']];
      const { theirs, mine } = await both(cmds, proto);
      // The one intended difference: with slots unserved we report cluster_state:fail (the issue
      // asks for it) while still serving our own slots, which Redis only does with
      // cluster-require-full-coverage no, where it reports ok.
      theirs[0] = rebulk(theirs[0], (t) => t.replace('cluster_state:ok', 'cluster_state:fail'));
      for (let i = 0; i < cmds.length; i++) assert.equal(mine[i], theirs[i], cmds[i].join(' '));
    });
  }

  it('CLUSTER SETSLOT: its refusals and their order, word for word; MIGRATING/IMPORTING/STABLE as Redis 7.0 answers them', async () => {
    const unknown = 'f'.repeat(40);
    // Each server names itself; everything else is the same text on both.
    const script = (me: string): string[][] => [
      ['CLUSTER', 'SETSLOT', '16384', 'STABLE'],
      ['CLUSTER', 'SETSLOT', 'x', 'STABLE'],
      ['CLUSTER', 'SETSLOT', '1', 'STABLE', 'extra'],
      ['CLUSTER', 'SETSLOT', '1', 'NOSUCH', me],
      ['CLUSTER', 'SETSLOT', '1', 'MIGRATING'],
      ['CLUSTER', 'SETSLOT', '1', 'MIGRATING', unknown],
      ['CLUSTER', 'SETSLOT', '6000', 'MIGRATING', me],
      ['CLUSTER', 'SETSLOT', '1', 'IMPORTING', me],
      ['CLUSTER', 'SETSLOT', '6000', 'IMPORTING', unknown],
      ['CLUSTER', 'SETSLOT', '1', 'NODE', unknown],
      ['CLUSTER', 'SETSLOT', '1', 'NODE', me],
      ['CLUSTER', 'SETSLOT', '1', 'MIGRATING', me],
      ['CLUSTER', 'SETSLOT', '1', 'STABLE'],
      ['CLUSTER', 'SETSLOT'],
    ];
    const out: string[][] = [];
    for (const [port, id] of [[redis.port, redisId], [ours.port, ourId]] as const) {
      const c = await RawClient.connect(port);
      const cmds = script(id);
      for (const cmd of cmds) c.write(resp(...cmd));
      out.push((await c.replies(cmds.length)).map((r) => r.replaceAll(id, '<me>')));
      c.destroy();
    }
    const cmds = script('<me>');
    for (let i = 0; i < cmds.length; i++) assert.equal(out[1][i], out[0][i], cmds[i].join(' '));
    // SETSLOT NODE to another node needs a managed cluster here; MIGRATING shows in CLUSTER NODES.
    const c = await RawClient.connect(ours.port);
    c.write(resp('CLUSTER', 'SETSLOT', '1', 'MIGRATING', ourId));
    c.write(resp('CLUSTER', 'NODES'));
    const [, text] = await c.replies(2);
    assert.match(text, new RegExp(` 0-5460 9000 \\[1->-${ourId}\\]\n`));
    c.write(resp('CLUSTER', 'SETSLOT', '1', 'STABLE'));
    c.write(resp('CLUSTER', 'NODES'));
    const [, stable] = await c.replies(2);
    assert.doesNotMatch(stable, /\[1->-/);
    c.destroy();
  });

  it('KEYSLOT, COUNTKEYSINSLOT, GETKEYSINSLOT, READONLY/READWRITE/ASKING and their errors', async () => {
    const cmds = [
      ['CLUSTER', 'KEYSLOT', 'somekey'],
      ['CLUSTER', 'KEYSLOT', '{user1}.following'],
      ['SET', '{b}1', 'x'],
      ['SET', '{b}2', 'x'],
      ['HSET', '{b}ns', 'f1', 'v', 'f2', 'v'], // a namespace is one key, as a hash is in Redis
      ['CLUSTER', 'COUNTKEYSINSLOT', '3300'],
      ['CLUSTER', 'GETKEYSINSLOT', '3300', '0'],
      ['CLUSTER', 'COUNTKEYSINSLOT', '1'],
      ['CLUSTER', 'GETKEYSINSLOT', '1', '10'],
      ['CLUSTER', 'COUNTKEYSINSLOT', 'x'],
      ['CLUSTER', 'COUNTKEYSINSLOT', '16384'],
      ['CLUSTER', 'COUNTKEYSINSLOT', '-1'],
      ['CLUSTER', 'GETKEYSINSLOT', '1', '-1'],
      ['CLUSTER', 'GETKEYSINSLOT', 'x', '1'],
      ['CLUSTER', 'GETKEYSINSLOT', '16384', '1'],
      ['CLUSTER', 'KEYSLOT'],
      ['CLUSTER', 'NOSUCH'],
      ['CLUSTER'],
      ['READONLY'],
      ['READWRITE'],
      ['ASKING'],
      ['READONLY', 'x'],
    ];
    const { theirs, mine } = await both(cmds);
    for (let i = 0; i < cmds.length; i++) assert.equal(mine[i], theirs[i], cmds[i].join(' '));
    // GETKEYSINSLOT's order is the store's, so compare it as a set.
    const c = await RawClient.connect(ours.port);
    c.write(resp('CLUSTER', 'GETKEYSINSLOT', '3300', '10'));
    const keys = (await c.reply()).split('\r\n').filter((l) => l.startsWith('{'));
    assert.deepEqual(keys.sort(), ['{b}1', '{b}2', '{b}ns']);
    c.destroy();
  });

  it('routing errors: CLUSTERDOWN for unserved slots, CROSSSLOT, keyless commands run', async () => {
    const cmds = [
      ['GET', 'foo'], // 12182: unassigned
      ['SET', 'foo', 'x'],
      ['DEL', 'a', 'b'], // the first key's slot is unserved: that is checked first
      ['DEL', 'b', 'a'], // different slots
      ['EXISTS', '{b}1', '{b}2'],
      ['DEL', '{b}1', '{b}2'],
      ['GET', 'b'], // 3300: ours
      ['PING'],
      ['HSET', 'foo', 'f', 'v'],
      ['HGET', '{b}ns', 'f'],
    ];
    const { theirs, mine } = await both(cmds);
    for (let i = 0; i < cmds.length; i++) assert.equal(mine[i], theirs[i], cmds[i].join(' '));
  });

  it('INFO cluster says cluster_enabled', async () => {
    const { theirs, mine } = await both([['INFO', 'cluster']]);
    assert.equal(mine[0], theirs[0]);
  });

  it('without [cluster] enabled the commands answer as a standalone redis-server', async () => {
    const standalone = await startRedis();
    try {
      const cmds = [['CLUSTER', 'INFO'], ['CLUSTER', 'KEYSLOT', 'x'], ['READONLY'], ['ASKING'], ['GET', 'foo'], ['INFO', 'cluster']];
      const out: string[][] = [];
      for (const port of [standalone.port, plain.port]) {
        const c = await RawClient.connect(port);
        for (const cmd of cmds) c.write(resp(...cmd));
        out.push(await c.replies(cmds.length));
        c.destroy();
      }
      assert.deepEqual(out[1], out[0]);
    } finally {
      await standalone.stop();
    }
  });
});
