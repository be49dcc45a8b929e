/**
 * Online resharding of a managed cluster: three primaries, each with a replica, on a one-member
 * etcd, keys preloaded, then writers and readers (ioredis Cluster, node-redis createCluster,
 * redis-py RedisCluster) run while `blobasaur cluster reshard` moves 1,000 slots from p1 to p2 in
 * two steps and `rebalance` evens them out again. After each step redis-cli --cluster check is
 * clean (three masters with one replica each); the replicas follow the moved keys (READONLY reads
 * on the new owner's replica see them, the old owner's replica redirects); at the end every key
 * is on exactly one primary with its last acknowledged value, each replica holds what its primary
 * holds, and no client saw an error beyond the redirections it follows. Figures printed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Etcd3 } from 'etcd3';
import { Cluster } from 'ioredis';
import { createCluster } from 'redis';
import { keySlot } from '../../src/cluster/slots.js';
import { initialMap } from '../../src/cluster/map.js';
import { etcdPrefix, updateMap } from '../../src/cluster/etcd.js';
import { RawClient, resp } from '../helpers/raw.js';
import { command, managedStarted, nodes, spawnManaged, waitFor, type ManagedSpec } from '../helpers/cluster.js';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { freePort, MAIN_JS, tempDir, type Child } from '../helpers/servers.js';

const run = promisify(execFile);
const NAME = 'reshard';
const PRIMARIES = ['p1', 'p2', 'p3'];
const REPLICAS = ['r1', 'r2', 'r3'];
const NAMES = [...PRIMARIES, ...REPLICAS];
/** Keys of each writer: overwritten in turn, so a key moved mid-write must keep its last value. */
const KEYS_PER_WRITER = 2000;
const PRELOAD = 6000;

/** Keys in p1's first 1,000 slots (0..999), the ones that move. */
function movingKeys(prefix: string, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) if (keySlot(`${prefix}${i}`) < 1000) out.push(`${prefix}${i}`);
  return out;
}

async function cli(etcd: string, ...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [MAIN_JS, 'cluster', ...args, '--etcd', etcd, '--name', NAME], { maxBuffer: 16 << 20 });
}

async function checkClean(port: number): Promise<void> {
  const { stdout } = await run('redis-cli', ['--cluster', 'check', `127.0.0.1:${port}`]);
  assert.match(stdout, /\[OK\] All nodes agree about slots configuration\./, stdout);
  assert.match(stdout, /\[OK\] All 16384 slots covered\./, stdout);
  assert.doesNotMatch(stdout, /WARNING|ERR/, stdout);
  assert.equal((stdout.match(/ \| 1 slaves\./g) ?? []).length, 3, stdout);
}

/** DBSIZE as a number. */
async function dbsize(port: number): Promise<number> {
  return Number(/^:(\d+)/.exec(await command(port, 'DBSIZE'))![1]);
}

interface WriterResult {
  writes: number;
  errors: string[];
  last: Map<string, string>;
}

describe('online resharding under load: 3 primaries + 3 replicas, 1,000 slots moved while clients write and read', () => {
  let etcd: TestEtcd;
  let client: Etcd3;
  const specs = new Map<string, ManagedSpec>();
  const procs = new Map<string, Child>();
  const port = (name: string): number => specs.get(name)!.port!;

  before(async () => {
    etcd = await startEtcd(1);
    client = new Etcd3({ hosts: etcd.endpoints });
    for (const name of NAMES) specs.set(name, { name, etcd: etcd.endpoints, clusterName: NAME, leaseTtlS: 5, port: await freePort() });
    await Promise.all(NAMES.map(async (n) => procs.set(n, await spawnManaged(specs.get(n)!))));
    await updateMap(client, etcdPrefix(NAME), () => initialMap(PRIMARIES, REPLICAS));
    await waitFor(
      'map on every node, replicas linked',
      () => managedStarted(NAMES.map((n) => ({ name: n, port: port(n), output: procs.get(n)!.output })), REPLICAS),
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

  it('a slot being moved: the source serves its keys and sends the others with -ASK; the target serves them only after ASKING', async () => {
    const [key] = movingKeys('ask:', 1);
    const slot = String(keySlot(key));
    const ids = new Map((await nodes(port('p1'))).map((l) => [l.name, l.id]));
    const tagged = `{${key}}:here`; // same slot, created before the move starts
    assert.equal(await command(port('p1'), 'SET', tagged, 'old'), '+OK\r\n');
    assert.equal(await command(port('p2'), 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', ids.get('p1')!), '+OK\r\n');
    assert.equal(await command(port('p1'), 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', ids.get('p2')!), '+OK\r\n');
    try {
      assert.equal(await command(port('p1'), 'GET', key), `-ASK ${slot} 127.0.0.1:${port('p2')}\r\n`);
      assert.equal(await command(port('p1'), 'GET', tagged), 'old');
      assert.equal(await command(port('p2'), 'SET', key, 'v'), `-MOVED ${slot} 127.0.0.1:${port('p1')}\r\n`);
      // ASKING holds for one command.
      const c = await RawClient.connect(port('p2'));
      c.write(resp('ASKING'));
      c.write(resp('SET', key, 'v'));
      c.write(resp('GET', key));
      assert.deepEqual(await c.replies(3), ['+OK\r\n', '+OK\r\n', `-MOVED ${slot} 127.0.0.1:${port('p1')}\r\n`]);
      c.destroy();
      // MIGRATE … "" … KEYS routes by the keys after KEYS, not by the empty key argument.
      assert.equal(await command(port('p1'), 'MIGRATE', '127.0.0.1', String(port('p2')), '', '0', '5000', 'KEYS', tagged), '+OK\r\n');
      assert.equal(await command(port('p1'), 'GET', tagged), `-ASK ${slot} 127.0.0.1:${port('p2')}\r\n`);
      assert.equal(await command(port('p1'), 'CLUSTER', 'COUNTKEYSINSLOT', slot), ':0\r\n');
      assert.equal(await command(port('p2'), 'CLUSTER', 'COUNTKEYSINSLOT', slot), ':2\r\n');
    } finally {
      assert.equal(await command(port('p2'), 'CLUSTER', 'SETSLOT', slot, 'NODE', ids.get('p2')!), '+OK\r\n');
      assert.equal(await command(port('p1'), 'CLUSTER', 'SETSLOT', slot, 'NODE', ids.get('p2')!), '+OK\r\n');
    }
    assert.equal(await command(port('p3'), 'GET', tagged), `-MOVED ${slot} 127.0.0.1:${port('p2')}\r\n`);
    assert.equal(await command(port('p2'), 'GET', tagged), 'old');
    await checkClean(port('p1'));
    // Give the slot back so the load test below starts from the even split.
    assert.equal(await command(port('p1'), 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', ids.get('p2')!), '+OK\r\n');
    assert.equal(await command(port('p2'), 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', ids.get('p1')!), '+OK\r\n');
    assert.equal(await command(port('p2'), 'MIGRATE', '127.0.0.1', String(port('p1')), '', '0', '5000', 'KEYS', key, tagged), '+OK\r\n');
    assert.equal(await command(port('p1'), 'CLUSTER', 'SETSLOT', slot, 'NODE', ids.get('p1')!), '+OK\r\n');
    assert.equal(await command(port('p1'), 'DEL', key, tagged), ':2\r\n');
    await checkClean(port('p2'));
  });

  it('moves 1,000 slots with their keys; no key lost or duplicated; clients see no errors', async () => {
    const ioc = new Cluster([{ host: '127.0.0.1', port: port('p3') }], { maxRedirections: 64, retryDelayOnMoved: 0, retryDelayOnTryAgain: 20 });
    const preload = movingKeys('pre:', PRELOAD);
    for (let i = 0; i < preload.length; i += 100) {
      await Promise.all(preload.slice(i, i + 100).map((k) => ioc.set(k, `v:${k}`)));
    }
    let stop = false;
    const deadline = Date.now() + 120_000;
    const ioWriter = (async (): Promise<WriterResult> => {
      const keys = movingKeys('io:', KEYS_PER_WRITER);
      const r: WriterResult = { writes: 0, errors: [], last: new Map() };
      for (let i = 0; !stop && Date.now() < deadline; i++) {
        const k = keys[i % keys.length];
        try {
          await ioc.set(k, String(i));
          r.last.set(k, String(i));
          r.writes++;
        } catch (err) {
          r.errors.push((err as Error).message);
        }
      }
      return r;
    })();
    let reads = 0;
    const readErrors: string[] = [];
    const ioReader = (async () => {
      for (let i = 0; !stop && Date.now() < deadline; i++) {
        const k = preload[i % preload.length];
        try {
          const v = await ioc.get(k);
          if (v !== `v:${k}`) readErrors.push(`${k}: ${v}`);
          reads++;
        } catch (err) {
          readErrors.push((err as Error).message);
        }
      }
    })();
    const nr = createCluster({ rootNodes: [{ url: `redis://127.0.0.1:${port('p2')}` }], maxCommandRedirections: 64 });
    await nr.connect();
    const nrWriter = (async (): Promise<WriterResult> => {
      const keys = movingKeys('nr:', KEYS_PER_WRITER);
      const r: WriterResult = { writes: 0, errors: [], last: new Map() };
      for (let i = 0; !stop && Date.now() < deadline; i++) {
        const k = keys[i % keys.length];
        try {
          await nr.set(k, String(i));
          r.last.set(k, String(i));
          r.writes++;
        } catch (err) {
          r.errors.push((err as Error).message);
        }
      }
      return r;
    })();
    // redis-py: a writer and a reader in one process, until the stop file appears.
    const dir = tempDir('blobasaur-reshard-py-');
    const stopFile = join(dir, 'stop');
    const pyKeys = movingKeys('py:', KEYS_PER_WRITER);
    writeFileSync(join(dir, 'keys.txt'), pyKeys.join('\n'));
    const py = spawn('/usr/bin/python3', ['-c', `
import os, sys, time, json
from redis.cluster import RedisCluster
rc = RedisCluster(host='127.0.0.1', port=${port('p1')}, cluster_error_retry_attempts=10)
keys = open(${JSON.stringify(join(dir, 'keys.txt'))}).read().split('\\n')
pre = ${JSON.stringify(preload.slice(0, 500))}
last, errors, writes, reads, i = {}, [], 0, 0, 0
end = time.time() + 120
while not os.path.exists(${JSON.stringify(stopFile)}) and time.time() < end:
    k = keys[i % len(keys)]
    try:
        rc.set(k, str(i)); last[k] = str(i); writes += 1
        p = pre[i % len(pre)]
        v = rc.get(p)
        if v is None or v.decode() != 'v:' + p: errors.append('read %s: %r' % (p, v))
        reads += 1
    except Exception as e:
        errors.append(repr(e))
    i += 1
print(json.dumps({'writes': writes, 'reads': reads, 'errors': errors[:20], 'nerrors': len(errors), 'last': last}))
`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let pyOut = '';
    let pyErr = '';
    py.stdout.on('data', (d: Buffer) => (pyOut += d.toString()));
    py.stderr.on('data', (d: Buffer) => (pyErr += d.toString()));
    const pyDone = new Promise<void>((r) => py.once('exit', () => r()));

    await new Promise((r) => setTimeout(r, 1000));
    await checkClean(port('p1'));
    const etcdUrl = etcd.endpoints[0];
    const t0 = Date.now();
    const first = await cli(etcdUrl, 'reshard', '--from', 'p1', '--to', 'p2', '--slots', '500', '--batch', '100');
    const t1 = Date.now();
    await checkClean(port('p3'));
    const second = await cli(etcdUrl, 'reshard', '--from', 'p1', '--to', 'p2', '--slots', '500', '--batch', '100');
    const t2 = Date.now();
    await checkClean(port('p2'));
    const lines = await nodes(port('p3'));
    assert.equal(lines.find((l) => l.name === 'p1')!.slots, '1000-5460');
    assert.equal(lines.find((l) => l.name === 'p2')!.slots, '0-999 5461-10922');
    // The replicas followed: r2 (p2's) serves the moved keys to READONLY clients, r1 (p1's) no longer has them.
    assert.equal(await command(port('p2'), 'WAIT', '1', '10000'), ':1\r\n');
    assert.equal(await command(port('p1'), 'WAIT', '1', '10000'), ':1\r\n');
    const r2 = await RawClient.connect(port('r2'));
    const r1 = await RawClient.connect(port('r1'));
    r2.write(resp('READONLY'));
    r1.write(resp('READONLY'));
    assert.deepEqual([await r2.reply(), await r1.reply()], ['+OK\r\n', '+OK\r\n']);
    const sample = preload.filter((_, i) => i % 60 === 0);
    for (const k of sample) {
      r2.write(resp('GET', k));
      assert.equal(await r2.reply(), `$${`v:${k}`.length}\r\nv:${k}\r\n`);
      r1.write(resp('GET', k));
      assert.equal(await r1.reply(), `-MOVED ${keySlot(k)} 127.0.0.1:${port('p2')}\r\n`);
    }
    r2.destroy();
    r1.destroy();
    let onR1 = 0;
    for (let s = 0; s < 1000; s++) onR1 += Number(/^:(\d+)/.exec(await command(port('r1'), 'CLUSTER', 'COUNTKEYSINSLOT', String(s)))![1]);
    assert.equal(onR1, 0);
    const moved = Number(/moved 500 slots and (\d+) keys/.exec(first.stdout)![1]) + Number(/moved 500 slots and (\d+) keys/.exec(second.stdout)![1]);
    // Back to an even split, still under load.
    const t3 = Date.now();
    const rebalance = await cli(etcdUrl, 'rebalance');
    const t4 = Date.now();
    assert.match(rebalance.stdout, /moved 1001 slots/); // p2 had 6462, the even share is 5461 (p1 takes the spare one)
    await checkClean(port('p1'));

    stop = true;
    writeFileSync(stopFile, '');
    const [io, nrr] = await Promise.all([ioWriter, nrWriter, ioReader]);
    await pyDone;
    const pyRes = JSON.parse(pyOut) as { writes: number; reads: number; errors: string[]; nerrors: number; last: Record<string, string> };

    // Every key once, on the node that owns it, with its last acknowledged value.
    const expected = new Map<string, string>([...preload.map((k) => [k, `v:${k}`] as const), ...io.last, ...nrr.last, ...Object.entries(pyRes.last)]);
    let lost = 0;
    let wrong = 0;
    for (const [k, v] of expected) {
      const got = await ioc.get(k);
      if (got === null) lost++;
      else if (got !== v) wrong++;
    }
    let total = 0;
    for (const n of PRIMARIES) total += await dbsize(port(n));
    const duplicated = total - expected.size;
    // Each replica holds what its primary holds, once it has applied everything.
    const replicaSizes: string[] = [];
    for (const [i, p] of PRIMARIES.entries()) {
      assert.equal(await command(port(p), 'WAIT', '1', '10000'), ':1\r\n');
      replicaSizes.push(`${p} ${await dbsize(port(p))} / ${REPLICAS[i]} ${await dbsize(port(REPLICAS[i]))}`);
    }
    ioc.disconnect();
    await nr.quit();
    const figures =
      `# reshard figures: 2 x 500 slots p1 -> p2 in ${((t1 - t0) / 1000).toFixed(1)} s + ${((t2 - t1) / 1000).toFixed(1)} s ` +
      `(${moved} keys moved), rebalance (1001 slots p2 -> p1) in ${((t4 - t3) / 1000).toFixed(1)} s; ` +
      `writes during it: ioredis ${io.writes}, node-redis ${nrr.writes}, redis-py ${pyRes.writes}; reads: ioredis ${reads}, redis-py ${pyRes.reads}; ` +
      `keys ${expected.size}: lost ${lost}, wrong value ${wrong}, duplicated ${duplicated}; primary/replica DBSIZE ${replicaSizes.join(', ')}; ` +
      `client errors: ioredis ${io.errors.length + readErrors.length}, node-redis ${nrr.errors.length}, redis-py ${pyRes.nerrors} ` +
      `(redirections redis-py logged and followed: ${(pyErr.match(/^redis\.exceptions\.AskError/gm) ?? []).length} ASK, ${(pyErr.match(/^redis\.exceptions\.MovedError/gm) ?? []).length} MOVED)`;
    console.log(figures);
    // redis-py logs each redirection it follows (AskError, MovedError) with its traceback; any other
    // exception on stderr is a failure.
    const pyRaised = [...pyErr.matchAll(/^redis\.exceptions\.(\w+)/gm)].map((m) => m[1]);
    assert.deepEqual(pyRaised.filter((e) => e !== 'AskError' && e !== 'MovedError'), [], pyErr.slice(0, 3000));
    assert.doesNotMatch(pyErr.replace(/Traceback[\s\S]*?redis\.exceptions\.(AskError|MovedError)[^\n]*\n/g, '').replace(/^(AskError|MovedError)\n/gm, ''), /\S/);
    assert.ok(io.writes > 100 && nrr.writes > 100 && pyRes.writes > 100, figures);
    assert.ok(moved > PRELOAD, figures);
    assert.deepEqual([...io.errors.slice(0, 5), ...readErrors.slice(0, 5), ...nrr.errors.slice(0, 5), ...pyRes.errors.slice(0, 5)], []);
    assert.equal(lost, 0);
    assert.equal(wrong, 0);
    assert.equal(duplicated, 0);
    for (const line of replicaSizes) {
      const [, a, b] = /^\w+ (\d+) \/ \w+ (\d+)$/.exec(line)!;
      assert.equal(a, b, line);
    }
  });
});
