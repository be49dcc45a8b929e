/**
 * Resharding with `namespace_routing = "field"`: a slot holds plain keys and the fields of any
 * namespace whose field name hashes to it. Two managed primaries on a one-member etcd; namespaced
 * values (HSET ns field value, some with field TTLs) and plain keys are preloaded, then
 * `blobasaur cluster reshard` moves 300 slots while an ioredis Cluster client keeps writing
 * fields of those slots. Every field ends on the owner of its slot, once, with its last value and
 * its TTL; the source keeps nothing of the moved slots.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Etcd3 } from 'etcd3';
import { Cluster } from 'ioredis';
import { keySlot } from '../../src/cluster/slots.js';
import { initialMap } from '../../src/cluster/map.js';
import { etcdPrefix, updateMap } from '../../src/cluster/etcd.js';
import { RawClient, resp } from '../helpers/raw.js';
import { command, nodes, startManaged, waitFor } from '../helpers/cluster.js';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { MAIN_JS, type TestServer } from '../helpers/servers.js';

const run = promisify(execFile);
const NAME = 'fieldmove';
const MOVED_SLOTS = 300;

/** Field names whose slots are in 0..MOVED_SLOTS-1 (the slots that move). */
function movingFields(prefix: string, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) if (keySlot(`${prefix}${i}`) < MOVED_SLOTS) out.push(`${prefix}${i}`);
  return out;
}

describe('resharding with namespace_routing = "field": fields move with their slots', () => {
  let etcd: TestEtcd;
  let client: Etcd3;
  const servers = new Map<string, TestServer>();
  const port = (n: string): number => servers.get(n)!.port;

  before(async () => {
    etcd = await startEtcd(1);
    client = new Etcd3({ hosts: etcd.endpoints });
    for (const name of ['p1', 'p2']) {
      servers.set(name, await startManaged({ name, etcd: etcd.endpoints, clusterName: NAME, leaseTtlS: 5, cluster: { namespace_routing: 'field' } }));
    }
    await updateMap(client, etcdPrefix(NAME), () => initialMap(['p1', 'p2']));
    await waitFor('map on both nodes', async () => {
      for (const n of servers.keys()) if (!/cluster_state:ok/.test(await command(port(n), 'CLUSTER', 'INFO'))) return false;
      return true;
    });
  });
  after(async () => {
    for (const s of servers.values()) await s.close();
    client.close();
    await etcd.stop();
  });

  it('a slot being moved: the source serves the fields it has, sends the others with -ASK; MIGRATE moves one field of every namespace', async () => {
    const [f] = movingFields('one:', 1);
    const slot = String(keySlot(f));
    const ids = new Map((await nodes(port('p1'))).map((l) => [l.name, l.id]));
    // Namespaces on p1 only through this field (their names' slots do not matter in field mode).
    for (const ns of ['nsA', 'nsB', 'nsC']) assert.equal(await command(port('p1'), 'HSET', ns, f, `v-${ns}`), ':1\r\n');
    assert.equal(await command(port('p1'), 'HPEXPIRE', 'nsC', '600000', 'FIELDS', '1', f), '*1\r\n:1\r\n');
    assert.equal(await command(port('p1'), 'SET', f, 'plain'), '+OK\r\n');
    // A namespace of the same name, whose one field stays on p1 (its own slot does not move).
    const stay = 'stay:2';
    assert.ok(keySlot(stay) < 8192 && keySlot(stay) !== keySlot(f));
    assert.equal(await command(port('p1'), 'HSET', f, stay, 'kept'), ':1\r\n');
    assert.equal(await command(port('p1'), 'CLUSTER', 'COUNTKEYSINSLOT', slot), ':1\r\n'); // one name: the plain key and the fields
    assert.equal(await command(port('p2'), 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', ids.get('p1')!), '+OK\r\n');
    assert.equal(await command(port('p1'), 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', ids.get('p2')!), '+OK\r\n');
    assert.equal(await command(port('p1'), 'HGET', 'nsA', f), 'v-nsA');
    assert.equal(await command(port('p1'), 'HGET', 'nsD', f), `-ASK ${slot} 127.0.0.1:${port('p2')}\r\n`);
    assert.equal(await command(port('p2'), 'HSET', 'nsD', f, 'x'), `-MOVED ${slot} 127.0.0.1:${port('p1')}\r\n`);
    const c = await RawClient.connect(port('p2'));
    c.write(resp('ASKING'));
    c.write(resp('HSET', 'nsD', f, 'v-nsD'));
    assert.deepEqual(await c.replies(2), ['+OK\r\n', ':1\r\n']);
    c.destroy();
    assert.equal(await command(port('p1'), 'GET', f), 'plain');
    assert.equal(await command(port('p1'), 'MIGRATE', '127.0.0.1', String(port('p2')), '', '0', '5000', 'REPLACE', 'KEYS', f), '+OK\r\n');
    // The plain key moved: p1 sends its readers on, though a namespace of that name is still here,
    // and serves a command on that whole namespace (namespaces never move in field mode).
    assert.equal(await command(port('p1'), 'GET', f), `-ASK ${slot} 127.0.0.1:${port('p2')}\r\n`);
    assert.equal(await command(port('p1'), 'HGETALL', f), `*2\r\n$${stay.length}\r\n${stay}\r\n$4\r\nkept\r\n`);
    assert.equal(await command(port('p1'), 'CLUSTER', 'COUNTKEYSINSLOT', slot), ':0\r\n');
    for (const ns of ['nsA', 'nsB', 'nsC']) assert.equal(await command(port('p1'), 'HEXISTS', ns, f), `-ASK ${slot} 127.0.0.1:${port('p2')}\r\n`);
    assert.equal(await command(port('p2'), 'CLUSTER', 'SETSLOT', slot, 'NODE', ids.get('p2')!), '+OK\r\n');
    assert.equal(await command(port('p1'), 'CLUSTER', 'SETSLOT', slot, 'NODE', ids.get('p2')!), '+OK\r\n');
    for (const ns of ['nsA', 'nsB', 'nsC', 'nsD']) assert.equal(await command(port('p2'), 'HGET', ns, f), `v-${ns}`);
    assert.equal(await command(port('p2'), 'GET', f), 'plain');
    const ttl = Number(/^\*1\r\n:(\d+)/.exec(await command(port('p2'), 'HPTTL', 'nsC', 'FIELDS', '1', f))![1]);
    assert.ok(ttl > 500_000 && ttl <= 600_000, String(ttl));
    assert.equal(await command(port('p2'), 'HPTTL', 'nsA', 'FIELDS', '1', f), '*1\r\n:-1\r\n');
    assert.equal(await command(port('p1'), 'HGET', 'nsA', f), `-MOVED ${slot} 127.0.0.1:${port('p2')}\r\n`);
    // Without REPLACE a field the target already has is BUSYKEY (as Redis words a refused RESTORE), and stays here.
    const g = movingFields('two:', 2).find((x) => keySlot(x) !== keySlot(f))!;
    const slot2 = String(keySlot(g));
    assert.equal(await command(port('p1'), 'HSET', 'nsA', g, 'src'), ':1\r\n');
    assert.equal(await command(port('p2'), 'CLUSTER', 'SETSLOT', slot2, 'IMPORTING', ids.get('p1')!), '+OK\r\n');
    assert.equal(await command(port('p1'), 'CLUSTER', 'SETSLOT', slot2, 'MIGRATING', ids.get('p2')!), '+OK\r\n');
    const b = await RawClient.connect(port('p2'));
    b.write(resp('ASKING'));
    b.write(resp('HSET', 'nsA', g, 'there'));
    assert.deepEqual(await b.replies(2), ['+OK\r\n', ':1\r\n']);
    b.destroy();
    const busy = '-ERR Target instance replied with error: BUSYKEY Target key name already exists.\r\n';
    assert.equal(await command(port('p1'), 'MIGRATE', '127.0.0.1', String(port('p2')), '', '0', '5000', 'KEYS', g), busy);
    assert.equal(await command(port('p1'), 'HGET', 'nsA', g), 'src');
    assert.equal(await command(port('p1'), 'MIGRATE', '127.0.0.1', String(port('p2')), '', '0', '5000', 'REPLACE', 'KEYS', g), '+OK\r\n');
    assert.equal(await command(port('p1'), 'CLUSTER', 'COUNTKEYSINSLOT', slot2), ':0\r\n');
    assert.equal(await command(port('p2'), 'CLUSTER', 'SETSLOT', slot2, 'NODE', ids.get('p2')!), '+OK\r\n');
    assert.equal(await command(port('p2'), 'HGET', 'nsA', g), 'src');
    // Give both slots back, empty, so the load test starts from the even split.
    for (const ns of ['nsA', 'nsB', 'nsC', 'nsD']) assert.equal(await command(port('p2'), 'HDEL', ns, f), ':1\r\n');
    assert.equal(await command(port('p2'), 'DEL', f), ':1\r\n');
    assert.equal(await command(port('p2'), 'HDEL', 'nsA', g), ':1\r\n');
    assert.equal(await command(port('p1'), 'HDEL', f, stay), ':1\r\n');
    for (const s of [slot, slot2]) assert.equal(await command(port('p2'), 'CLUSTER', 'SETSLOT', s, 'NODE', ids.get('p1')!), '+OK\r\n');
    await waitFor('slots back on p1', async () => (await command(port('p1'), 'HGET', 'nsA', f)) === '$-1\r\n' && (await command(port('p1'), 'HGET', 'nsA', g)) === '$-1\r\n');
  });

  it('reshard moves 300 slots of fields while a client writes them: every field once, on its owner, with its last value and TTL', async () => {
    const ioc = new Cluster([{ host: '127.0.0.1', port: port('p2') }], { maxRedirections: 64, retryDelayOnMoved: 0, retryDelayOnTryAgain: 20 });
    const fields = movingFields('f:', 1500);
    const expected = new Map<string, string>(); // "ns\0field" -> value
    for (let i = 0; i < fields.length; i += 100) {
      await Promise.all(
        fields.slice(i, i + 100).map(async (f, j) => {
          const ns = `ns${(i + j) % 7}`;
          await ioc.hset(ns, f, `v:${ns}:${f}`);
          expected.set(`${ns}\0${f}`, `v:${ns}:${f}`);
        }),
      );
    }
    const withTtl = fields.slice(0, 50).map((f, i) => [`ns${i % 7}`, f] as const);
    for (const [ns, f] of withTtl) assert.deepEqual(await ioc.call('HPEXPIRE', ns, '900000', 'FIELDS', '1', f), [1]);
    const staying: string[] = [];
    for (let i = 0; staying.length < 100; i++) if (keySlot(`s:${i}`) >= MOVED_SLOTS && keySlot(`s:${i}`) < 8192) staying.push(`s:${i}`);
    for (const f of staying) await ioc.hset('ns0', f, `s:${f}`);
    const plain = movingFields('k:', 300);
    for (const k of plain) await ioc.set(k, `p:${k}`);
    // A writer overwriting fields of the moving slots in one namespace.
    let stop = false;
    const writer = (async () => {
      const keys = movingFields('w:', 400);
      const r = { writes: 0, errors: [] as string[] };
      const deadline = Date.now() + 90_000;
      for (let i = 0; !stop && Date.now() < deadline; i++) {
        const f = keys[i % keys.length];
        try {
          await ioc.hset('live', f, String(i));
          expected.set(`live\0${f}`, String(i));
          r.writes++;
        } catch (err) {
          r.errors.push((err as Error).message);
        }
      }
      return r;
    })();
    const started = Date.now();
    const { stdout } = await run(process.execPath, [MAIN_JS, 'cluster', 'reshard', '--from', 'p1', '--to', 'p2', '--slots', String(MOVED_SLOTS), '--etcd', etcd.endpoints[0], '--name', NAME], {
      maxBuffer: 16 << 20,
    });
    const took = Date.now() - started;
    stop = true;
    const w = await writer;
    const movedNames = Number(/moved \d+ slots and (\d+) keys/.exec(stdout)![1]);
    assert.equal((await nodes(port('p1'))).find((l) => l.name === 'p2')!.slots, `0-${MOVED_SLOTS - 1} 8192-16383`);
    // Nothing of the moved slots stays on p1.
    let left = 0;
    for (let s = 0; s < MOVED_SLOTS; s++) left += Number(/^:(\d+)/.exec(await command(port('p1'), 'CLUSTER', 'COUNTKEYSINSLOT', String(s)))![1]);
    assert.equal(left, 0);
    // Every field and key on p2 with its last value; TTLs kept.
    let lost = 0;
    let wrong = 0;
    for (const [id, v] of expected) {
      const [ns, f] = id.split('\0');
      const got = await command(port('p2'), 'HGET', ns, f);
      if (got === '$-1\r\n') lost++;
      else if (got !== v) wrong++;
    }
    for (const k of plain) assert.equal(await command(port('p2'), 'GET', k), `p:${k}`);
    for (const [ns, f] of withTtl) {
      const ttl = Number(/^\*1\r\n:(-?\d+)/.exec(await command(port('p2'), 'HPTTL', ns, 'FIELDS', '1', f))![1]);
      assert.ok(ttl > 0 && ttl <= 900_000, `${ns} ${f}: ${ttl}`);
    }
    // Fields of the slots that stayed are still on p1, and only there.
    for (const f of staying) {
      assert.equal(await command(port('p1'), 'HGET', 'ns0', f), `s:${f}`);
      assert.equal(await command(port('p2'), 'HGET', 'ns0', f), `-MOVED ${keySlot(f)} 127.0.0.1:${port('p1')}\r\n`);
    }
    ioc.disconnect();
    console.log(`# field-mode reshard: ${MOVED_SLOTS} slots, ${movedNames} names moved in ${(took / 1000).toFixed(1)} s; writer ${w.writes} writes, ${w.errors.length} errors; fields ${expected.size}: lost ${lost}, wrong ${wrong}`);
    assert.ok(w.writes > 50, String(w.writes));
    assert.deepEqual(w.errors.slice(0, 5), []);
    assert.equal(lost, 0);
    assert.equal(wrong, 0);
  });
});
