/**
 * CLUSTER INFO/NODES/SLOTS/SHARDS/MYID/KEYSLOT/COUNTKEYSINSLOT/GETKEYSINSLOT and READONLY,
 * READWRITE, ASKING, shaped as Redis 7 replies. Without `[cluster] enabled` they answer as a
 * standalone redis-server does: "ERR This instance has cluster support disabled".
 */
import { ErrorReply, OK, RespMap, Verbatim, type Reply } from '../protocol/reply.js';
import { countKeysInSlot, keysInSlot } from '../cluster/keyspace.js';
import { formatRanges, keySlot, SLOT_COUNT, type SlotRange } from '../cluster/slots.js';
import type { ClusterNode, ClusterState } from '../cluster/state.js';
import { parseInteger } from './args.js';
import { NOT_INTEGER, SYNTAX_ERROR } from './errors.js';
import { containerHelp } from './help.js';
import type { CommandContext, CommandFlag, CommandSpec, Handler } from './types.js';

const DISABLED = new ErrorReply('ERR This instance has cluster support disabled');

/** Runs `f` with the cluster state, or refuses as a standalone Redis does. */
function clustered(f: (cluster: ClusterState, ctx: CommandContext, args: Buffer[]) => Reply | Promise<Reply>): Handler {
  return (ctx, args) => {
    const cluster = ctx.server.cluster;
    return cluster === undefined ? DISABLED : f(cluster, ctx, args);
  };
}

function sub(
  name: string,
  arity: number,
  summary: string,
  handler: Handler,
  opts: { flags?: CommandFlag[]; tips?: string[]; since?: string } = {},
): CommandSpec {
  return {
    name,
    arity,
    flags: opts.flags ?? ['stale'],
    keys: null,
    categories: ['slow'],
    ...(opts.tips === undefined ? {} : { tips: opts.tips }),
    group: 'cluster',
    summary,
    since: opts.since ?? '3.0.0',
    handler,
  };
}

function connectionLevel(name: string, summary: string, flags: CommandFlag[]): CommandSpec {
  return {
    name,
    arity: 1,
    flags,
    keys: null,
    categories: ['fast', 'connection'],
    group: 'cluster',
    summary,
    since: '3.0.0',
    // No replicas and no slot migration yet: every node is a master serving its own slots, so
    // these only acknowledge (Redis answers the same OK).
    handler: clustered(() => OK),
  };
}

const NONDETERMINISTIC = ['nondeterministic_output'];

export const clusterCommands: CommandSpec[] = [
  {
    name: 'cluster',
    arity: -2,
    flags: [],
    keys: null,
    categories: ['slow'],
    group: 'cluster',
    summary: 'A container for Redis Cluster commands.',
    since: '3.0.0',
    handler: () => SYNTAX_ERROR, // never called: the dispatcher routes to a subcommand
    subcommands: [
      sub('cluster|info', 2, 'Returns information about the state of a node.', clustered((c) => new Verbatim(clusterInfo(c))), { tips: NONDETERMINISTIC }),
      sub('cluster|nodes', 2, 'Returns the cluster configuration for a node.', clustered((c) => new Verbatim(clusterNodes(c))), { tips: NONDETERMINISTIC }),
      sub('cluster|slots', 2, 'Returns the mapping of cluster slots to nodes.', clustered(clusterSlots), { tips: NONDETERMINISTIC }),
      sub('cluster|shards', 2, 'Returns the mapping of cluster slots to shards.', clustered(clusterShards), { tips: NONDETERMINISTIC, since: '7.0.0' }),
      sub('cluster|myid', 2, 'Returns the ID of a node.', clustered((c) => c.myself.id)),
      sub('cluster|keyslot', 3, 'Returns the hash slot for a key.', clustered((_c, _ctx, args) => keySlot(args[2]))),
      sub(
        'cluster|countkeysinslot',
        3,
        'Returns the number of keys in a hash slot.',
        clustered((c, { ks, now }, args) => {
          const slot = parseInteger(args[2]);
          if (slot === null) return NOT_INTEGER;
          if (slot < 0 || slot >= SLOT_COUNT) return new ErrorReply('ERR Invalid slot');
          return countKeysInSlot(ks, c.namespaceRouting, slot, now);
        }),
      ),
      sub(
        'cluster|getkeysinslot',
        4,
        'Returns the key names in a hash slot.',
        clustered((c, { ks, now }, args) => {
          const slot = parseInteger(args[2]);
          const max = parseInteger(args[3]);
          if (slot === null || max === null) return NOT_INTEGER;
          if (max < 0 || slot < 0 || slot >= SLOT_COUNT) return new ErrorReply('ERR Invalid slot or number of keys');
          return keysInSlot(ks, c.namespaceRouting, slot, max, now);
        }),
        { tips: NONDETERMINISTIC },
      ),
      sub('cluster|help', 2, 'Returns helpful text about the different subcommands.', (ctx) => containerHelp(ctx, 'cluster'), {
        flags: ['loading', 'stale'],
        since: '5.0.0',
      }),
    ],
  },
  connectionLevel('readonly', 'Enables read-only queries for a connection to a Redis Cluster replica node.', ['loading', 'stale', 'fast']),
  connectionLevel('readwrite', 'Enables read-write queries for a connection to a Redis Cluster replica node.', ['loading', 'stale', 'fast']),
  connectionLevel('asking', 'Signals that a cluster client is following an -ASK redirect.', ['fast']),
];

/** The address clients use for a node; a node that has not learned its own host says 127.0.0.1. */
export function nodeHost(n: ClusterNode): string {
  return n.host === '' ? '127.0.0.1' : n.host;
}

/** CLUSTER INFO, field for field as Redis 7.0 writes it. */
export function clusterInfo(c: ClusterState): string {
  const s = c.summary();
  const fields: [string, string | number][] = [
    ['cluster_state', s.state],
    ['cluster_slots_assigned', s.assigned],
    ['cluster_slots_ok', s.ok],
    ['cluster_slots_pfail', s.pfail],
    ['cluster_slots_fail', s.fail],
    ['cluster_known_nodes', c.nodes().length],
    ['cluster_size', s.size],
    ['cluster_current_epoch', 0],
    ['cluster_my_epoch', 0],
    // Per-type counters appear once non-zero, before each total, as in Redis.
    ...byType(c.stats.sentByType, 'sent'),
    ['cluster_stats_messages_sent', c.stats.messagesSent],
    ...byType(c.stats.receivedByType, 'received'),
    ['cluster_stats_messages_received', c.stats.messagesReceived],
    ['total_cluster_links_buffer_limit_exceeded', 0],
  ];
  return fields.map(([k, v]) => `${k}:${v}\r\n`).join('');
}

function byType(counts: Record<string, number>, dir: 'sent' | 'received'): [string, number][] {
  return Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([type, n]) => [`cluster_stats_messages_${type}_${dir}`, n]);
}

function nodeFlags(n: ClusterNode): string {
  const flags = n.myself ? ['myself', 'master'] : ['master'];
  if (n.failed) flags.push('fail');
  else if (n.pfail) flags.push('fail?');
  return flags.join(',');
}

/** One CLUSTER NODES line: id addr@bus,hostname flags master ping pong epoch link slots. */
export function nodeLine(n: ClusterNode): string {
  const slots = n.slots.length > 0 ? ` ${formatRanges(n.slots)}` : '';
  const link = n.myself || (n.linked && !n.failed) ? 'connected' : 'disconnected';
  const ping = n.myself ? 0 : n.pingSent;
  const pong = n.myself ? 0 : n.pongReceived;
  return `${n.id} ${nodeHost(n)}:${n.port}@${n.busPort},${n.name} ${nodeFlags(n)} - ${ping} ${pong} 0 ${link}${slots}\n`;
}

export function clusterNodes(c: ClusterState): string {
  return c.nodes().map(nodeLine).join('');
}

/** CLUSTER SLOTS: one entry per run of consecutive slots with the same owner, ascending. */
function clusterSlots(c: ClusterState): Reply {
  const runs: { start: number; end: number; node: ClusterNode }[] = [];
  for (const n of c.nodes()) for (const [a, b] of n.slots) runs.push({ start: a, end: b, node: n });
  runs.sort((x, y) => x.start - y.start);
  const conflicts = c.slotConflicts();
  const out: Reply[] = [];
  for (const r of runs) {
    // Slots claimed twice are not served by anyone; they are left out, as unassigned slots are.
    for (const [a, b] of withoutConflicts([r.start, r.end], conflicts)) {
      out.push([a, b, [nodeHost(r.node), r.node.port, r.node.id, new RespMap([['hostname', r.node.name]])]]);
    }
  }
  return out;
}

function withoutConflicts([a, b]: SlotRange, conflicts: ReadonlyMap<number, unknown>): SlotRange[] {
  if (conflicts.size === 0) return [[a, b]];
  const out: SlotRange[] = [];
  let start = -1;
  for (let s = a; s <= b + 1; s++) {
    const ok = s <= b && !conflicts.has(s);
    if (ok && start < 0) start = s;
    else if (!ok && start >= 0) {
      out.push([start, s - 1]);
      start = -1;
    }
  }
  return out;
}

/** CLUSTER SHARDS: every master is a shard of one node (there are no replicas). */
function clusterShards(c: ClusterState): Reply {
  return c.nodes().map(
    (n) =>
      new RespMap([
        ['slots', n.slots.flatMap(([a, b]) => [a, b])],
        [
          'nodes',
          [
            new RespMap([
              ['id', n.id],
              ['port', n.port],
              ['ip', nodeHost(n)],
              ['endpoint', nodeHost(n)],
              ['hostname', n.name],
              ['role', 'master'],
              ['replication-offset', 0],
              ['health', n.failed ? 'fail' : 'online'],
            ]),
          ],
        ],
      ]),
  );
}
