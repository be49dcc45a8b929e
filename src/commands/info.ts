/** INFO: Redis' sections and field names where a field means the same thing. */
import { randomBytes } from 'node:crypto';
import { arch, platform, release } from 'node:os';
import { opsStats } from '../observability/metrics.js';
import { VERSION } from '../version.js';
import type { CommandContext } from './types.js';
import type { StoreStats } from '../storage/keyspace.js';

/** A replication id, new at every start as Redis' is. */
const REPLID = randomBytes(20).toString('hex');

type Fields = ReadonlyArray<readonly [string, string | number]>;

/** Redis 7's default sections, in its order. */
const DEFAULT_SECTIONS = ['server', 'clients', 'memory', 'persistence', 'stats', 'replication', 'cpu', 'errorstats', 'cluster', 'keyspace'];
/** Every built-in section in Redis' order; `all` adds commandstats to the defaults. */
const ALL_SECTIONS = ['server', 'clients', 'memory', 'persistence', 'stats', 'replication', 'cpu', 'commandstats', 'errorstats', 'cluster', 'keyspace'];

export async function renderInfo(ctx: CommandContext, requested: string[]): Promise<string> {
  const extra = ctx.server.infoSections();
  const wanted = new Set<string>();
  const names = requested.map((r) => r.toLowerCase());
  if (names.length === 0 || names.includes('default')) DEFAULT_SECTIONS.forEach((s) => wanted.add(s));
  if (names.includes('all') || names.includes('everything')) {
    ALL_SECTIONS.forEach((s) => wanted.add(s));
    extra.forEach(([s]) => wanted.add(s));
  }
  for (const n of names) if (!['default', 'all', 'everything'].includes(n)) wanted.add(n);
  const parts: string[] = [];
  for (const section of [...ALL_SECTIONS, ...extra.map(([s]) => s)]) {
    if (!wanted.has(section)) continue;
    const fields = await sectionFields(ctx, section, extra);
    if (fields === null) continue;
    const title = section[0].toUpperCase() + section.slice(1);
    parts.push(`# ${title}\r\n${fields.map(([k, v]) => `${k}:${v}\r\n`).join('')}`);
  }
  return parts.join('\r\n');
}

async function sectionFields(
  { server, ks, now }: CommandContext,
  section: string,
  extra: ReadonlyArray<readonly [string, () => Fields]>,
): Promise<Fields | null> {
  switch (section) {
    case 'server': {
      const uptime = Math.floor((now - server.startedAt) / 1000);
      return [
        ['redis_version', server.version],
        ['redis_mode', 'standalone'],
        ['os', `${platform()} ${release()} ${arch()}`],
        ['arch_bits', 64],
        ['process_id', process.pid],
        ['tcp_port', server.port],
        ['server_time_usec', now * 1000],
        ['uptime_in_seconds', uptime],
        ['uptime_in_days', Math.floor(uptime / 86400)],
        ['executable', process.argv[1] ?? ''],
        ['config_file', server.configFile ?? ''],
        ['blobasaur_version', VERSION],
        ['node_version', process.versions.node],
      ];
    }
    case 'clients': {
      let count = 0;
      for (const _ of server.clients()) count++;
      return [
        ['connected_clients', count],
        ['blocked_clients', 0],
      ];
    }
    case 'memory': {
      const mem = process.memoryUsage();
      return [
        ['used_memory', mem.heapUsed + mem.external],
        ['used_memory_human', human(mem.heapUsed + mem.external)],
        ['used_memory_rss', mem.rss],
        ['used_memory_rss_human', human(mem.rss)],
        ['maxmemory', 0],
        ['maxmemory_policy', 'noeviction'],
      ];
    }
    case 'persistence': {
      // Every write is durable at its commit; SAVE/BGSAVE make a backup copy (docs/operations.md).
      const ops = opsStats(server);
      const save = ops.save;
      return [
        ['loading', 0],
        ['async_loading', 0],
        ['rdb_changes_since_last_save', ops.writeCommands - save.changesAtLastSave],
        ['rdb_bgsave_in_progress', save.inProgress === null ? 0 : 1],
        ['rdb_last_save_time', Math.floor(save.lastSaveMs / 1000)],
        ['rdb_last_bgsave_status', save.lastStatus],
        ['rdb_last_bgsave_time_sec', save.lastDurationMs < 0 ? -1 : Math.round(save.lastDurationMs / 1000)],
        ['aof_enabled', 0],
        // Shards that returned SQLITE_CORRUPT/NOTADB/IOERR or a checksum mismatch (docs/operations.md).
        ['storage_damaged_shards', ks.stats().shards.filter((s) => s.damage !== null).length],
        // Checkpoints move the WAL into the shard files on a worker thread (docs/operations.md).
        ...checkpointFields(ks.stats().checkpoints),
      ];
    }
    case 'stats':
      return [
        ['total_connections_received', server.stats.totalConnections],
        ['total_commands_processed', server.stats.totalCommands],
        ['rejected_connections', server.stats.rejectedConnections],
        ['total_error_replies', server.stats.errorReplies],
        ['expired_keys', ks.stats().sweptRows],
        ['protocol_errors', server.stats.protocolErrors],
        ['async_write_failures', server.stats.asyncWriteFailures],
        // Copies replicas took from this node (a replica that continues from its offset takes none).
        ['sync_full', server.replication?.source.fullSyncs ?? 0],
      ];
    case 'replication':
      if (server.replication !== undefined) return server.replication.infoFields();
      // No replication: a master without replicas or backlog, in the fields clients read
      // (Sentinel-aware clients, redis-py's and ioredis' role checks, WAIT-based tools).
      return [
        ['role', 'master'],
        ['connected_slaves', 0],
        ['master_failover_state', 'no-failover'],
        ['master_replid', REPLID],
        ['master_replid2', '0000000000000000000000000000000000000000'],
        ['master_repl_offset', 0],
        ['second_repl_offset', -1],
        ['repl_backlog_active', 0],
        ['repl_backlog_size', 1048576],
        ['repl_backlog_first_byte_offset', 0],
        ['repl_backlog_histlen', 0],
      ];
    case 'cpu': {
      const cpu = process.cpuUsage();
      return [
        ['used_cpu_sys', (cpu.system / 1e6).toFixed(6)],
        ['used_cpu_user', (cpu.user / 1e6).toFixed(6)],
      ];
    }
    case 'commandstats':
      return [...opsStats(server).commands]
        .filter(([, c]) => c.calls > 0)
        .map(([name, c]) => [
          `cmdstat_${name}`,
          `calls=${c.calls},usec=${c.usec},usec_per_call=${(c.usec / c.calls).toFixed(2)},rejected_calls=0,failed_calls=${c.failed}`,
        ]);
    case 'errorstats':
      return [...opsStats(server).errors].map(([kind, n]) => [`errorstat_${kind}`, `count=${n}`]);
    case 'cluster':
      return [['cluster_enabled', server.cluster === undefined ? 0 : 1]];
    case 'keyspace': {
      const keys = await ks.dbsize();
      // dbsize() drained the queues, so the committed rows are the whole truth here.
      return keys === 0 ? [] : [['db0', `keys=${keys},expires=${ks.countExpiring(now)},avg_ttl=0`]];
    }
    default:
      return extra.find(([name]) => name === section)?.[1]() ?? null;
  }
}

function checkpointFields(stats: StoreStats['checkpoints']): [string, number | string][] {
  if (stats === null) return [['wal_checkpoint_worker', 0]];
  return [
    ['wal_checkpoint_worker', 1],
    ['wal_checkpoints', stats.completed],
    ['wal_checkpoint_failures', stats.failed],
    ['wal_checkpoint_usec_per_call', stats.completed === 0 ? '0.00' : ((stats.totalMillis * 1000) / stats.completed).toFixed(2)],
  ];
}

function human(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v}B` : `${v.toFixed(2)}${units[u]}`;
}
