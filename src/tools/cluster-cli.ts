/**
 * `blobasaur cluster …`: drives a managed cluster through etcd. Every change is one
 * compare-and-swap of the slot map (epoch + 1); the nodes watch the map and follow it.
 *   create --primaries a,b,c [--replicas d,e,f]   first map: slots split evenly, replicas dealt round-robin
 *   add-node NAME [--replica-of PRIMARY]          a primary without slots, or a replica
 *   failover NAME                                  promote replica NAME (its primary becomes its replica)
 *   forget NAME                                    remove a replica, or a primary without slots
 *   status                                         the map, who holds a lease, offsets
 *   reshard --from A --to B --slots N              move N slots (and their keys) while clients write
 *   rebalance                                      move slots until every primary has an even share
 * Common: --etcd URL[,URL…] (default http://127.0.0.1:2379) --name CLUSTER (default "default").
 */
import { addNode, formatMap, initialMap, MapError, promote, removeNode, type ClusterMap } from '../cluster/map.js';
import { etcdClient, etcdPrefix, readMap, updateMap } from '../cluster/etcd.js';
import { formatRanges, countSlots } from '../cluster/slots.js';
import { progress } from './progress.js';
import { rebalancePlan, reshard, type Move, type ReshardOptions } from './reshard.js';

const USAGE = `Usage: blobasaur cluster <create|add-node|failover|forget|status|reshard|rebalance> [options] [--etcd URL,…] [--name CLUSTER]
  create --primaries a,b,c [--replicas d,e,f]   write the first slot map
  add-node NAME [--replica-of PRIMARY]          add a primary without slots, or a replica
  failover NAME                                  promote replica NAME
  forget NAME                                    remove a replica or a primary without slots
  status                                         show the map and which nodes hold a lease
  reshard --from A --to B --slots N              move N of A's slots, with their keys, to B while clients write
  rebalance                                      move slots until every primary serves an even share
  (reshard, rebalance: --batch KEYS per MIGRATE, default 100; --timeout MS, default 5000; --password PW)`;

export async function runClusterTool(argv: string[]): Promise<number> {
  const flags = new Map<string, string>();
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--help' || argv[i] === '-h') {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (argv[i].startsWith('--')) flags.set(argv[i].slice(2), argv[++i] ?? '');
    else words.push(argv[i]);
  }
  const [sub, arg] = words;
  const hosts = (flags.get('etcd') ?? 'http://127.0.0.1:2379').split(',');
  const prefix = etcdPrefix(flags.get('name') ?? 'default');
  const list = (k: string): string[] => (flags.get(k) ?? '').split(',').filter((s) => s !== '');
  const client = etcdClient({ hosts });
  try {
    let next: ClusterMap;
    switch (sub) {
      case 'create':
        next = await updateMap(client, prefix, (m) => {
          if (m !== null) throw new MapError('this cluster already has a slot map');
          return initialMap(list('primaries'), list('replicas'));
        });
        break;
      case 'add-node':
        if (arg === undefined) throw new MapError('add-node needs a node name');
        next = await updateMap(client, prefix, (m) => addNode(need(m), arg, flags.get('replica-of') ?? null));
        break;
      case 'failover':
        if (arg === undefined) throw new MapError('failover needs the name of a replica');
        next = await updateMap(client, prefix, (m) => promote(need(m), arg));
        break;
      case 'forget':
        if (arg === undefined) throw new MapError('forget needs a node name');
        next = await updateMap(client, prefix, (m) => removeNode(need(m), arg));
        await client.delete().key(`${prefix}/members/${arg}`);
        break;
      case 'reshard':
      case 'rebalance': {
        const opts: ReshardOptions = {
          batch: Number(flags.get('batch') ?? 100),
          timeoutMs: Number(flags.get('timeout') ?? 5000),
          password: flags.get('password'),
        };
        if (!(Number.isInteger(opts.batch) && opts.batch > 0)) throw new MapError('--batch must be a positive integer');
        let moves: Move[];
        if (sub === 'reshard') {
          const n = Number(flags.get('slots'));
          const from = flags.get('from');
          const to = flags.get('to');
          if (from === undefined || to === undefined || !Number.isInteger(n) || n <= 0) throw new MapError('reshard needs --from NODE --to NODE --slots N');
          moves = [{ from, to, slots: n }];
        } else {
          moves = rebalancePlan(need((await readMap(client, prefix)).map));
        }
        const started = Date.now();
        let keys = 0;
        for (const m of moves) {
          const bar = progress(`${m.from} -> ${m.to}`, 'slots');
          try {
            keys += (await reshard(client, prefix, m, opts, bar)).keys;
          } finally {
            bar.done();
          }
        }
        const slots = moves.reduce((n, m) => n + m.slots, 0);
        process.stdout.write(`moved ${slots} slots and ${keys} keys in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
        process.stdout.write(status((await readMap(client, prefix)).map, prefix, new Map(Object.entries(await client.getAll().prefix(`${prefix}/alive/`).strings()))));
        return 0;
      }
      case 'status': {
        const { map } = await readMap(client, prefix);
        const alive = new Map(Object.entries(await client.getAll().prefix(`${prefix}/alive/`).strings()));
        process.stdout.write(status(map, prefix, alive));
        return 0;
      }
      default:
        process.stderr.write(`${USAGE}\n`);
        return 2;
    }
    process.stdout.write(`slot map epoch ${next.epoch}: ${formatMap(next)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`blobasaur cluster ${sub ?? ''}: ${(err as Error).message}\n`);
    return err instanceof MapError ? 1 : 2;
  } finally {
    client.close();
  }
}

function need(m: ClusterMap | null): ClusterMap {
  if (m === null) throw new MapError('this cluster has no slot map yet: run `blobasaur cluster create` first');
  return m;
}

function status(map: ClusterMap | null, prefix: string, aliveRaw: Map<string, string>): string {
  if (map === null) return 'no slot map yet\n';
  const alive = new Map([...aliveRaw].map(([k, v]) => [k.slice(prefix.length + 7), JSON.parse(v) as { offset: number }]));
  const lines = [`epoch ${map.epoch}`];
  for (const s of map.shards) {
    const mark = (n: string): string => (alive.has(n) ? `${n} (up, offset ${alive.get(n)!.offset})` : `${n} (DOWN)`);
    lines.push(`primary ${mark(s.primary)}: ${countSlots(s.slots)} slots ${formatRanges(s.slots)}`);
    for (const r of s.replicas) lines.push(`  replica ${mark(r)}`);
  }
  return `${lines.join('\n')}\n`;
}
