#!/usr/bin/env node
// Repeats the managed-cluster start of the cluster-* integration tests (one-member etcd, 3 primaries
// + 3 replicas, initial map, wait for cluster_state:ok everywhere and master_link_status:up on the
// replicas) N times, to chase a start that never completes. On a timeout it prints which condition
// is false on which node, INFO replication + CLUSTER INFO of each, and every node's log.
// Usage (after `npx tsc -p .`): BLOBASAUR_TEST_LOG_LEVEL=info node scripts/repro-managed-start.mjs [runs] [timeoutMs]
import { Etcd3 } from 'etcd3';
const d = new URL('../dist/', import.meta.url);
const { spawnManaged, command } = await import(new URL('test/helpers/cluster.js', d).href);
const { startEtcd } = await import(new URL('test/helpers/etcd.js', d).href);
const { freePort } = await import(new URL('test/helpers/servers.js', d).href);
const { initialMap } = await import(new URL('src/cluster/map.js', d).href);
const { etcdPrefix, updateMap } = await import(new URL('src/cluster/etcd.js', d).href);

const runs = Number(process.argv[2] ?? 10);
const timeoutMs = Number(process.argv[3] ?? 30_000);
const PRIMARIES = ['p1', 'p2', 'p3'];
const REPLICAS = ['r1', 'r2', 'r3'];
const NAMES = [...PRIMARIES, ...REPLICAS];

async function safe(port, ...args) {
  try {
    return await command(port, ...args);
  } catch (err) {
    return `<${err.message}>`;
  }
}

async function missing(ports) {
  const out = [];
  for (const n of NAMES) if (!/cluster_state:ok/.test(await safe(ports.get(n), 'CLUSTER', 'INFO'))) out.push(`${n}: cluster_state not ok`);
  for (const r of REPLICAS) if (!/master_link_status:up/.test(await safe(ports.get(r), 'INFO', 'replication'))) out.push(`${r}: master_link_status not up`);
  return out;
}

let failures = 0;
for (let i = 1; i <= runs; i++) {
  const name = `repro${i}`;
  const etcd = await startEtcd(1);
  const client = new Etcd3({ hosts: etcd.endpoints });
  const ports = new Map();
  const procs = new Map();
  for (const n of NAMES) ports.set(n, await freePort());
  const t0 = Date.now();
  await Promise.all(NAMES.map(async (n) => procs.set(n, await spawnManaged({ name: n, etcd: etcd.endpoints, clusterName: name, leaseTtlS: 5, port: ports.get(n) }))));
  const spawned = Date.now() - t0;
  await updateMap(client, etcdPrefix(name), () => initialMap(PRIMARIES, REPLICAS));
  const t1 = Date.now();
  let left = [];
  for (;;) {
    left = await missing(ports);
    if (left.length === 0 || Date.now() - t1 > timeoutMs) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const took = Date.now() - t1;
  // With log_level info: replicas that saw the map before their primary had registered (the race).
  const waited = NAMES.filter((n) => procs.get(n).output().includes('has not registered in etcd yet'));
  const promoted = NAMES.filter((n) => procs.get(n).output().includes('failover: promoted'));
  if (waited.length + promoted.length > 0) console.log(`run ${i}: replicas that waited for a starting primary: [${waited}], promoted themselves: [${promoted}]`);
  if (left.length === 0) {
    console.log(`run ${i}: ok (spawn ${spawned} ms, map→ready ${took} ms)`);
  } else {
    failures++;
    console.log(`run ${i}: TIMEOUT after ${took} ms: ${left.join('; ')}`);
    for (const n of NAMES) {
      console.log(`---- ${n} (port ${ports.get(n)}) CLUSTER INFO:\n${await safe(ports.get(n), 'CLUSTER', 'INFO')}`);
      console.log(`---- ${n} INFO replication:\n${await safe(ports.get(n), 'INFO', 'replication')}`);
      console.log(`---- ${n} CLUSTER NODES:\n${await safe(ports.get(n), 'CLUSTER', 'NODES')}`);
      console.log(`---- ${n} log:\n${procs.get(n).output()}`);
    }
  }
  for (const p of procs.values()) {
    p.proc.kill('SIGKILL');
    await p.exited;
  }
  client.close();
  await etcd.stop();
}
console.log(`${failures} of ${runs} runs timed out`);
process.exit(failures === 0 ? 0 : 1);
