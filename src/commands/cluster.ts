/**
 * CLUSTER INFO/NODES/SLOTS/SHARDS/MYID/KEYSLOT/COUNTKEYSINSLOT/GETKEYSINSLOT/FORGET and READONLY,
 * READWRITE, ASKING, shaped as Redis 7 replies. Without `[cluster] enabled` they answer as a
 * standalone redis-server does: "ERR This instance has cluster support disabled".
 */
import { ErrorReply, OK, RespMap, Verbatim, type Reply } from '../protocol/reply.js';
import { countKeysInSlot, keysInSlot } from '../cluster/keyspace.js';
import { askingClients, readonlyClients } from '../cluster/routing.js';
import { formatRanges, keySlot, SLOT_COUNT } from '../cluster/slots.js';
import type { ClusterNode, ClusterState } from '../cluster/state.js';
import { parseInteger } from './args.js';
import { NOT_INTEGER, SYNTAX_ERROR } from './errors.js';
import { containerHelp } from './help.js';
import { defineCommand } from './define.js';
import type { CommandContext, CommandFlag, CommandSpec, Handler } from './types.js';

const DISABLED = new ErrorReply('ERR This instance has cluster support disabled');

/** Runs `f` with the cluster state, or refuses as a standalone Redis does. */
function clustered(f: (cluster: ClusterState, ctx: CommandContext, args: Buffer[]) => Reply | Promise<Reply>): Handler {
  return (ctx, args) => {
    const cluster = ctx.server.cluster;
    return cluster === undefined ? DISABLED : f(cluster, ctx, args);
  };
}

function connectionLevel(name: string, summary: string, flags: CommandFlag[], readonlyMode?: boolean): CommandSpec {
  return defineCommand({
    name,
    group: 'cluster',
    summary,
    complexity: 'O(1)',
    since: '3.0.0',
    arity: 1,
    flags,
    categories: ['connection'],
    // READONLY/READWRITE switch replica reads for this connection; ASKING lets the next command
    // into a slot this node is importing.
    handler: clustered((_c, ctx) => {
      if (readonlyMode === true) readonlyClients.add(ctx.client);
      else if (readonlyMode === false) readonlyClients.delete(ctx.client);
      else askingClients.add(ctx.client);
      return OK;
    }),
  });
}

export const clusterCommands: CommandSpec[] = [
  defineCommand({
    name: 'cluster',
    group: 'cluster',
    summary: 'A container for cluster commands',
    complexity: 'Depends on subcommand.',
    since: '3.0.0',
    arity: -2,
    flags: [],
    handler: () => SYNTAX_ERROR, // never called: the dispatcher routes to a subcommand
    subcommands: [
      defineCommand({
        name: 'cluster|info',
        group: 'cluster',
        summary: 'Provides info about Redis Cluster node state',
        complexity: 'O(1)',
        since: '3.0.0',
        arity: 2,
        flags: ['stale'],
        tips: ['nondeterministic_output'],
        handler: clustered((c) => new Verbatim(clusterInfo(c))),
      }),
      defineCommand({
        name: 'cluster|nodes',
        group: 'cluster',
        summary: 'Get Cluster config for the node',
        complexity: 'O(N) where N is the total number of Cluster nodes',
        since: '3.0.0',
        arity: 2,
        flags: ['stale'],
        tips: ['nondeterministic_output'],
        handler: clustered((c) => new Verbatim(clusterNodes(c))),
      }),
      defineCommand({
        name: 'cluster|slots',
        group: 'cluster',
        summary: 'Get array of Cluster slot to node mappings',
        complexity: 'O(N) where N is the total number of Cluster nodes',
        since: '3.0.0',
        arity: 2,
        flags: ['stale'],
        tips: ['nondeterministic_output'],
        docFlags: ['deprecated'],
        deprecatedSince: '7.0.0',
        replacedBy: '`CLUSTER SHARDS`',
        handler: clustered(clusterSlots),
      }),
      defineCommand({
        name: 'cluster|shards',
        group: 'cluster',
        summary: 'Get array of cluster slots to node mappings',
        complexity: 'O(N) where N is the total number of cluster nodes',
        since: '7.0.0',
        arity: 2,
        flags: ['stale'],
        tips: ['nondeterministic_output'],
        handler: clustered(clusterShards),
      }),
      defineCommand({
        name: 'cluster|myid',
        group: 'cluster',
        summary: 'Return the node id',
        complexity: 'O(1)',
        since: '3.0.0',
        arity: 2,
        flags: ['stale'],
        handler: clustered((c) => c.myself.id),
      }),
      defineCommand({
        name: 'cluster|keyslot',
        group: 'cluster',
        summary: 'Returns the hash slot of the specified key',
        complexity: 'O(N) where N is the number of bytes in the key',
        since: '3.0.0',
        arity: 3,
        flags: ['stale'],
        handler: clustered((_c, _ctx, args) => keySlot(args[2])),
      }),
      defineCommand({
        name: 'cluster|countkeysinslot',
        group: 'cluster',
        summary: 'Return the number of local keys in the specified hash slot',
        complexity: 'O(1)',
        since: '3.0.0',
        arity: 3,
        flags: ['stale'],
        handler: clustered((c, { ks, now }, args) => {
          const slot = parseInteger(args[2]);
          if (slot === null) return NOT_INTEGER;
          if (slot < 0 || slot >= SLOT_COUNT) return new ErrorReply('ERR Invalid slot');
          return countKeysInSlot(ks, c.namespaceRouting, slot, now);
        }),
      }),
      defineCommand({
        name: 'cluster|getkeysinslot',
        group: 'cluster',
        summary: 'Return local key names in the specified hash slot',
        complexity: 'O(log(N)) where N is the number of requested keys',
        since: '3.0.0',
        arity: 4,
        flags: ['stale'],
        tips: ['nondeterministic_output'],
        handler: clustered((c, { ks, now }, args) => {
          const slot = parseInteger(args[2]);
          const max = parseInteger(args[3]);
          if (slot === null || max === null) return NOT_INTEGER;
          if (max < 0 || slot < 0 || slot >= SLOT_COUNT) return new ErrorReply('ERR Invalid slot or number of keys');
          return keysInSlot(ks, c.namespaceRouting, slot, max, now);
        }),
      }),
      defineCommand({
        name: 'cluster|setslot',
        group: 'cluster',
        summary: 'Bind a hash slot to a specific node',
        complexity: 'O(1)',
        since: '3.0.0',
        arity: -4,
        flags: ['admin', 'stale', 'no_async_loading'],
        handler: clustered(clusterSetslot),
      }),
      defineCommand({
        name: 'cluster|forget',
        group: 'cluster',
        summary: 'Remove a node from the nodes table',
        complexity: 'O(1)',
        since: '3.0.0',
        arity: 3,
        flags: ['admin', 'stale', 'no_async_loading'],
        handler: clustered(clusterForget),
      }),
      defineCommand({
        name: 'cluster|help',
        group: 'cluster',
        summary: 'Show helpful text about the different subcommands',
        complexity: 'O(1)',
        since: '5.0.0',
        arity: 2,
        flags: ['loading', 'stale'],
        handler: (ctx) => containerHelp(ctx, 'cluster'),
      }),
    ],
  }),
  connectionLevel('readonly', 'Enables read queries for a connection to a cluster replica node', ['loading', 'stale', 'fast'], true),
  connectionLevel('readwrite', 'Disables read queries for a connection to a cluster replica node', ['loading', 'stale', 'fast'], false),
  connectionLevel('asking', 'Sent by cluster clients after an -ASK redirect', ['fast']),
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
    ['cluster_current_epoch', c.currentEpoch()],
    ['cluster_my_epoch', c.myself.epoch],
    // Per-type counters appear once non-zero, before each total, as in Redis.
    ...byType(c.stats.sentByType, 'sent'),
    ['cluster_stats_messages_sent', c.stats.messagesSent],
    ...byType(c.stats.receivedByType, 'received'),
    ['cluster_stats_messages_received', c.stats.messagesReceived],
    ['total_cluster_links_buffer_limit_exceeded', c.stats.linkBufferLimitExceeded],
  ];
  return fields.map(([k, v]) => `${k}:${v}\r\n`).join('');
}

function byType(counts: Record<string, number>, dir: 'sent' | 'received'): [string, number][] {
  return Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([type, n]) => [`cluster_stats_messages_${type}_${dir}`, n]);
}

function nodeFlags(n: ClusterNode): string {
  const role = n.replicaOf === null ? 'master' : 'slave';
  const flags = n.myself ? ['myself', role] : [role];
  if (n.failed) flags.push('fail');
  else if (n.pfail) flags.push('fail?');
  return flags.join(',');
}

/**
 * One CLUSTER NODES line: id addr@bus,hostname flags master ping pong epoch link slots. The slots
 * are those the node serves once contested slots are settled, as every client must see them.
 */
export function nodeLine(n: ClusterNode, open = ''): string {
  const slots = (n.owned.length > 0 ? ` ${formatRanges(n.owned)}` : '') + open;
  const link = n.myself || (n.linked && !n.failed) ? 'connected' : 'disconnected';
  const ping = n.myself ? 0 : n.pingSent;
  const pong = n.myself ? 0 : n.pongReceived;
  return `${n.id} ${nodeHost(n)}:${n.port}@${n.busPort},${n.name} ${nodeFlags(n)} ${n.replicaOf ?? '-'} ${ping} ${pong} ${n.epoch} ${link}${slots}\n`;
}

export function clusterNodes(c: ClusterState): string {
  // This node's open slots, as Redis appends them to its own line: [slot->-target] [slot-<-source].
  const open = [...[...c.migrating].map(([s, id]) => ` [${s}->-${id}]`), ...[...c.importing].map(([s, id]) => ` [${s}-<-${id}]`)].join('');
  return c.nodes().map((n) => nodeLine(n, n.myself ? open : '')).join('');
}

/** CLUSTER FORGET, worded as Redis 7 words it (there are no replicas, so no "my master" case). */
function clusterForget(c: ClusterState, _ctx: CommandContext, args: Buffer[]): Reply {
  switch (c.forget(args[2].toString('latin1'))) {
    case 'unknown':
      return new ErrorReply(`ERR Unknown node ${args[2].toString()}`);
    case 'myself':
      return new ErrorReply("ERR I tried hard but I can't forget myself...");
    default:
      return OK;
  }
}

const SETSLOT_USAGE = new ErrorReply('ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP');

/**
 * CLUSTER SETSLOT slot IMPORTING|MIGRATING|NODE node-id | STABLE, with Redis 7.0's checks in its
 * order (clusterCommand). IMPORTING/MIGRATING/STABLE are this node's own state, as in Redis. NODE
 * changes the owner in etcd (one CAS of the map, epoch + 1; nothing to write when etcd already
 * says so); every node follows the map and ends its migrating/importing state for the slot.
 */
async function clusterSetslot(c: ClusterState, { ks, now }: CommandContext, args: Buffer[]): Promise<Reply> {
  if (c.myself.replicaOf !== null) return new ErrorReply('ERR Please use SETSLOT only with masters.');
  const slot = parseInteger(args[2]);
  if (slot === null || slot < 0 || slot >= SLOT_COUNT) return new ErrorReply('ERR Invalid or out of range slot');
  const action = args[3].toString('latin1').toLowerCase();
  const id = args.length === 5 ? args[4].toString('latin1') : '';
  const owner = c.owner(slot);
  if (action === 'stable' && args.length === 4) {
    c.migrating.delete(slot);
    c.importing.delete(slot);
    return OK;
  }
  if (args.length !== 5 || !['migrating', 'importing', 'node'].includes(action)) return SETSLOT_USAGE;
  const n = c.node(id);
  if (action === 'migrating') {
    if (owner !== c.myself) return new ErrorReply(`ERR I'm not the owner of hash slot ${slot}`);
    if (n === undefined) return new ErrorReply(`ERR I don't know about node ${args[4].toString()}`);
    if (n.replicaOf !== null) return new ErrorReply('ERR Target node is not a master');
    c.migrating.set(slot, n.id);
    return OK;
  }
  if (action === 'importing') {
    if (owner === c.myself) return new ErrorReply(`ERR I'm already the owner of hash slot ${slot}`);
    if (n === undefined) return new ErrorReply(`ERR I don't know about node ${args[4].toString()}`);
    if (n.replicaOf !== null) return new ErrorReply('ERR Target node is not a master');
    c.importing.set(slot, n.id);
    return OK;
  }
  if (n === undefined) return new ErrorReply(`ERR Unknown node ${args[4].toString()}`);
  if (n.replicaOf !== null) return new ErrorReply('ERR Target node is not a master');
  if (owner === c.myself && n !== c.myself && countKeysInSlot(ks, c.namespaceRouting, slot, now) > 0) {
    return new ErrorReply(`ERR Can't assign hashslot ${slot} to a different node while I still hold keys for this hash slot.`);
  }
  if (owner === n) return OK; // nothing changes hands; states end when the owner changes
  if (c.assignSlot === null) return new ErrorReply('ERR CLUSTER SETSLOT NODE needs a managed cluster ([cluster] etcd): a static cluster takes its slots from its config files');
  try {
    await c.assignSlot(slot, n.name);
  } catch (err) {
    return new ErrorReply(`ERR ${(err as Error).message}`);
  }
  return OK;
}

/** The replicas of each primary (managed clusters), in node order. */
function replicasOf(c: ClusterState): Map<string, ClusterNode[]> {
  const out = new Map<string, ClusterNode[]>();
  for (const n of c.nodes()) {
    if (n.replicaOf === null) continue;
    const list = out.get(n.replicaOf) ?? [];
    list.push(n);
    out.set(n.replicaOf, list);
  }
  return out;
}

function slotsNode(n: ClusterNode): Reply {
  return [nodeHost(n), n.port, n.id, new RespMap([['hostname', n.name]])];
}

/**
 * CLUSTER SLOTS: one entry per run of consecutive slots with the same owner, ascending; the
 * owner's live replicas follow it, as Redis lists them (failed replicas are left out).
 */
function clusterSlots(c: ClusterState): Reply {
  const replicas = replicasOf(c);
  const runs: { start: number; end: number; node: ClusterNode }[] = [];
  for (const n of c.nodes()) for (const [a, b] of n.owned) runs.push({ start: a, end: b, node: n });
  runs.sort((x, y) => x.start - y.start);
  return runs.map((r) => [r.start, r.end, slotsNode(r.node), ...(replicas.get(r.node.id) ?? []).filter((n) => !n.failed).map(slotsNode)]);
}

function shardNode(n: ClusterNode, offset: (n: ClusterNode) => number): RespMap {
  return new RespMap([
    ['id', n.id],
    ['port', n.port],
    ['ip', nodeHost(n)],
    ['endpoint', nodeHost(n)],
    ['hostname', n.name],
    ['role', n.replicaOf === null ? 'master' : 'replica'],
    ['replication-offset', offset(n)],
    ['health', n.failed ? 'fail' : 'online'],
  ]);
}

/** CLUSTER SHARDS: one shard per primary, its replicas after it. */
function clusterShards(c: ClusterState): Reply {
  const replicas = replicasOf(c);
  return c
    .nodes()
    .filter((n) => n.replicaOf === null || c.node(n.replicaOf) === undefined)
    .map(
      (n) =>
        new RespMap([
          ['slots', n.owned.flatMap(([a, b]) => [a, b])],
          ['nodes', [n, ...(replicas.get(n.id) ?? [])].map((m) => shardNode(m, (x) => c.offsetOf(x)))],
        ]),
    );
}
