/**
 * Assembles a running server from a validated config: store, TCP server, logging of what is
 * active. main.ts adds the process concerns (CLI, signals, exit codes); tests call this directly.
 */
import { resolve } from 'node:path';
import type { Config } from './config/index.js';
import { parseHostPort } from './config/index.js';
import type { Logger } from './observability/log.js';
import { startMetricsServer, type MetricsServer } from './observability/http.js';
import { createMetrics, shardFileBytes } from './observability/metrics.js';
import { dataLayout } from './observability/startup.js';
import { LayoutError } from './storage/layout.js';
import { startAutoVacuum } from './tools/vacuum.js';
import { BlobServer } from './server/server.js';
import { Cluster } from './cluster/index.js';
import { ManagedRoles } from './cluster/failover.js';
import { Replication } from './replication/index.js';
import { randomBytes } from 'node:crypto';
import type { ServerContext } from './commands/types.js';
import { tlsServerOptions } from './server/tls.js';
import { Store, type ShardStats } from './storage/store.js';
import { Keyspace } from './storage/keyspace.js';
import { Sampler } from './dashboard/sampler.js';
import { readable } from './dashboard/api.js';
import { checkSaveDir, defaultSaveDir } from './tools/backup.js';
import type { StorageError } from './storage/shard.js';
import { shutdownCodecs } from './storage/codecs.js';
import { VERSION } from './version.js';

export interface RunningServer {
  readonly server: BlobServer;
  readonly store: Store;
  readonly port: number;
  /** Port of the /metrics and /health endpoint; null when [metrics] is not enabled. */
  readonly metricsPort: number | null;
  /** The dashboard's address (http://host:port/); null when it is off. */
  readonly dashboardUrl: string | null;
  /** Where SAVE and BGSAVE write. */
  readonly backupDir: string;
  /** Graceful shutdown; resolves when every write is committed and the shards are closed. */
  close(reason?: string): Promise<void>;
}

/** Redis' client-query-buffer-limit default bounds one command's bytes; values are bounded apart. */
const MAX_PENDING_REPLIES = 10_000;
/** Reads whose replies are computed off the event loop (decompression) in flight per client. */
const MAX_PENDING_READS = 8;
const INFLIGHT_MAX_BYTES = 256 * 1024 * 1024;

export async function startServer(config: Config, log: Logger, configFile: string | null = null): Promise<RunningServer> {
  // addr = "" (allowed only with tls_addr, config/schema.ts): no plaintext listener.
  const plain = config.addr === '' ? null : parseHostPort(config.addr);
  if (plain !== null && !plain.ok) throw new Error(`addr ${config.addr} is not host:port`);
  const tlsAddr = config.tls_addr === undefined ? null : parseHostPort(config.tls_addr);
  if (tlsAddr !== null && !tlsAddr.ok) throw new Error(`tls_addr ${config.tls_addr} is not host:port`);
  const addr = plain ?? (tlsAddr as { host: string; port: number });
  const dataDir = resolve(config.data_dir);
  const backupDir = config.backup_dir === undefined ? defaultSaveDir(dataDir) : resolve(config.backup_dir);
  const badBackupDir = checkSaveDir(backupDir, dataDir);
  if (badBackupDir !== null) throw new LayoutError(badBackupDir);
  // Before the store opens: a TLS file problem stops the start with nothing to clean up.
  const tlsOptions = tlsServerOptions(config);
  const store = Store.open({
    dataDir,
    numShards: config.num_shards,
    asyncWrite: config.async_write,
    batchSize: config.batch_size,
    batchTimeoutMs: config.batch_timeout_ms,
    inflightCapacity: config.inflight_capacity,
    inflightMaxBytes: INFLIGHT_MAX_BYTES,
    readCacheBytes: config.read_cache_mb * 1024 * 1024,
    valueCacheBytes: config.value_cache_mb * 1024 * 1024,
    compression: config.storage_compression.enabled && config.storage_compression.algorithm !== 'none'
      ? { algorithm: config.storage_compression.algorithm, level: config.storage_compression.level }
      : null,
    sqlite: config.sqlite,
    maxValueBytes: config.proto_max_bulk_len,
    onWriteFailure: (err, write, shard) => {
      server.stats.asyncWriteFailures += config.async_write ? 1 : 0;
      log.error({ err: err.message, shard, op: write.kind }, 'write failed to commit');
    },
    onMaintenanceProblem: (message, shard) => log.warn({ shard, err: message }, 'maintenance worker problem'),
    onStorageError: storageErrorLogger(log),
    diskReserveBytes: config.disk_reserve_mb * 1024 * 1024,
    onDiskFull: (full, message) => (full ? log.error({ data_dir: dataDir }, message) : log.warn({ data_dir: dataDir }, message)),
  });
  const server: BlobServer = new BlobServer(
    store,
    {
      host: addr.host,
      port: plain === null ? null : addr.port,
      version: REDIS_COMPAT_VERSION,
      configFile,
      backupDir,
      maxClients: config.maxclients,
      requirepass: config.requirepass ?? null,
      protectedMode: config.protected_mode,
      idleTimeoutSec: config.timeout,
      tls:
        tlsOptions === null
          ? null
          : tlsAddr !== null
            ? { host: tlsAddr.host, port: tlsAddr.port, options: tlsOptions }
            : { port: config.tls_port, options: tlsOptions },
      configParameters: (): [string, string][] => redisParameters(config, dataDir, addr.host, server.port),
      limits: {
        maxBulkLen: config.proto_max_bulk_len,
        maxArgs: config.max_args,
        maxQueryBuffer: config.client_query_buffer_limit,
        outputSoftLimit: config.client_output_buffer_limit_soft,
        outputHardLimit: config.client_output_buffer_limit_hard,
        maxPendingReplies: MAX_PENDING_REPLIES,
        maxPendingReads: MAX_PENDING_READS,
      },
    },
    log,
  );
  server.addInfoSection('blobasaur', () => {
    const stats = store.stats();
    const sum = (f: (s: ShardStats) => number): number => stats.shards.reduce((n, s) => n + f(s), 0);
    const commits = sum((s) => s.commits);
    return [
      ['blobasaur_version', VERSION],
      ['data_dir', dataDir],
      ['shards', store.numShards],
      ['async_write', config.async_write ? 1 : 0],
      ['batch_size', config.batch_size],
      ['batch_timeout_ms', config.batch_timeout_ms],
      ['inflight_ops', stats.inflightWrites],
      ['queue_depths', stats.shards.map((s) => s.queueDepth).join(',')],
      ['overlay_entries', sum((s) => s.overlayEntries)],
      ['commits', commits],
      ['committed_writes', sum((s) => s.committedWrites)],
      ['failed_writes', sum((s) => s.failedWrites)],
      // Writes per commit, averaged over every commit so far.
      ['avg_commit_batch', commits === 0 ? '0.00' : (sum((s) => s.committedWrites + s.failedWrites) / commits).toFixed(2)],
      ['shard_file_bytes', stats.shards.map((s) => shardFileBytes(s.path)).join(',')],
      ['read_cache_hits', stats.readCache.hits],
      ['read_cache_misses', stats.readCache.misses],
      ['read_cache_bytes', stats.readCache.bytes],
      ['read_cache_entries', stats.readCache.entries],
      ['value_cache_hits', stats.valueCache.hits],
      ['value_cache_misses', stats.valueCache.misses],
      ['value_cache_bytes', stats.valueCache.bytes],
      ['value_cache_entries', stats.valueCache.entries],
      ['value_buffer_reuses', store.valueBuffers.reuses],
      ['value_buffer_idle_bytes', store.valueBuffers.idleBytes],
      ['shard_free_pages', store.pageStats().map((p) => p.freelistCount).join(',')],
      // 1 for a shard that returned SQLITE_CORRUPT, NOTADB, IOERR or a checksum mismatch (docs/operations.md).
      ['shard_damaged', stats.shards.map((s) => (s.damage === null ? 0 : 1)).join(',')],
      ['storage_errors', sum((s) => s.storageErrors)],
      ['disk_full', store.diskFull ? 1 : 0],
      ...storageFields(store, config),
    ];
  });
  // Cluster routing is in place before the port opens; gossip starts once it is open.
  const cluster = config.cluster.enabled ? new Cluster(config, log) : null;
  if (cluster !== null) {
    (server as ServerContext).cluster = cluster.state;
    server.addInfoSection('gossip', () => cluster.infoFields());
  }
  const replication = new Replication(
    store,
    {
      name: config.cluster.enabled ? config.cluster.node_id : randomBytes(8).toString('hex'),
      addr: () => `${addr.host === '0.0.0.0' || addr.host === '' ? '127.0.0.1' : addr.host}:${server.port}`,
      backlogBytes: config.replication.backlog_mb * 1024 * 1024,
      masterauth: config.replication.masterauth ?? config.requirepass,
      secret: config.cluster.enabled ? config.cluster.secret : undefined,
    },
    log,
  );
  (server as ServerContext).replication = replication;
  let roles: ManagedRoles | null = null;
  let rolesTimer: NodeJS.Timeout | null = null;
  let port: number;
  try {
    port = await server.listen();
  } catch (err) {
    await store.close();
    throw err;
  }
  if (cluster !== null && cluster.managed) {
    // Views are taken in one at a time, and again every second (a failed promotion is retried).
    let chain: Promise<void> = Promise.resolve();
    const take = (): void => {
      const etcd = cluster.etcd;
      if (etcd === null || roles === null) return;
      const r = roles;
      chain = chain.then(() => r.onView(etcd.view())).catch((err: Error) => log.warn({ err: err.message }, 'cluster role change failed'));
    };
    cluster.onManagedView = take;
    rolesTimer = setInterval(take, 1000);
    rolesTimer.unref();
  }
  if (cluster !== null) {
    try {
      await cluster.start(port === 0 ? server.tlsPort : port);
      if (cluster.etcd !== null) {
        roles = new ManagedRoles(cluster.etcd, replication, config.cluster.node_id, log);
        cluster.onManagedView(cluster.etcd.view());
      }
    } catch (err) {
      await cluster.stop();
      await server.close('cluster bus failed to start');
      throw err;
    }
  }
  const replicaOf = config.replication.replicaof === undefined ? null : parseHostPort(config.replication.replicaof);
  if (replicaOf !== null && replicaOf.ok && !(cluster?.managed ?? false)) await replication.follow(replicaOf.host, replicaOf.port);
  let metrics: MetricsServer | null = null;
  let dashboardUrl: string | null = null;
  let sampler: Sampler | null = null;
  if (config.metrics.enabled) {
    const maddr = parseHostPort(config.metrics.addr);
    if (!maddr.ok) throw new Error(`metrics.addr ${config.metrics.addr} is not host:port`);
    const registry = createMetrics(server, store);
    if (config.dashboard.enabled) sampler = new Sampler(server, store);
    const dashboard =
      sampler === null
        ? null
        : {
            server,
            store,
            keyspace: new Keyspace(store),
            sampler,
            killClient: (id: number) => {
              const found = [...server.clients()].some((c) => c.id === id);
              server.killClient(id, false);
              return found;
            },
            slowlog: {
              get thresholdUs() {
                return server.slowlog.slowerThan;
              },
              entries: (max: number) =>
                server.slowlog.newest(max).map((e) => ({
                  id: e.id,
                  timestamp: e.time,
                  durationUs: e.micros,
                  args: e.args.map((a) => readable(a)),
                  client: e.addr,
                  clientName: e.name,
                })),
            },
            info: {
              addr: `${addr.host}:${port}`,
              dataDir,
              mode: cluster !== null ? `cluster node ${config.cluster.node_id}` : 'standalone',
            },
          };
    try {
      metrics = await startMetricsServer(maddr.host, maddr.port, registry, store, server, dashboard);
    } catch (err) {
      await cluster?.stop();
      await server.close('metrics endpoint failed to start');
      throw err;
    }
    sampler?.start();
    const host = maddr.host.includes(':') ? `[${maddr.host}]` : maddr.host;
    if (dashboard !== null) dashboardUrl = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${metrics.port}/`;
    log.info(
      { metrics_addr: `${maddr.host}:${metrics.port}`, ...(dashboardUrl === null ? {} : { dashboard: dashboardUrl }) },
      dashboardUrl === null ? 'metrics endpoint serving /metrics and /health' : 'HTTP endpoint serving the dashboard, /metrics and /health',
    );
  }
  const stopAutoVacuum = config.auto_vacuum ? startAutoVacuum(store, log) : () => {};
  log.debug({ data_dir: dataDir, layout: dataLayout(store) }, 'data layout');
  log.info(
    {
      addr: plain === null ? '(plaintext port off)' : `${addr.host}:${port}`,
      ...(server.tlsPort > 0 ? { tls_addr: `${tlsAddr?.host ?? addr.host}:${server.tlsPort}` } : {}),
      data_dir: dataDir,
      shards: config.num_shards,
      async_write: config.async_write,
    },
    `blobasaur ${VERSION} ready to accept connections`,
  );
  if (!server.auth.required && config.protected_mode) {
    log.info('protected mode: no requirepass, so only clients on 127.0.0.1 or ::1 are accepted');
  }
  return {
    server,
    store,
    port,
    metricsPort: metrics?.port ?? null,
    dashboardUrl,
    backupDir,
    close: async (reason = 'close') => {
      if (rolesTimer !== null) clearInterval(rolesTimer);
      roles?.stop();
      await replication.close();
      await cluster?.stop();
      stopAutoVacuum();
      sampler?.stop();
      await metrics?.close();
      await server.close(reason);
      await shutdownCodecs();
    },
  };
}

/**
 * The Redis parameters CONFIG GET reports, in Redis' names, with what they mean here: durability is
 * SQLite's (no RDB snapshots, no AOF), memory is not a limit on data, there is one database.
 * The password is not among them: it is never sent back.
 */
function redisParameters(config: Config, dataDir: string, host: string, port: number): [string, string][] {
  const yesNo = (b: boolean): string => (b ? 'yes' : 'no');
  return [
    ['bind', host],
    ['port', String(port)],
    ['tls-port', String(config.tls_addr === undefined ? config.tls_port : (parseHostPort(config.tls_addr) as { port: number }).port)],
    ['dir', dataDir],
    ['databases', '1'],
    ['save', ''],
    ['appendonly', 'no'],
    ['maxmemory', '0'],
    ['maxmemory-policy', 'noeviction'],
    ['maxclients', String(config.maxclients)],
    ['timeout', String(config.timeout)],
    ['protected-mode', yesNo(config.protected_mode)],
    ['proto-max-bulk-len', String(config.proto_max_bulk_len)],
    ['client-query-buffer-limit', String(config.client_query_buffer_limit)],
    ['cluster-enabled', yesNo(config.cluster.enabled)],
    ['busy-reply-threshold', String(config.busy_reply_threshold_ms)],
    ['lua-time-limit', String(config.busy_reply_threshold_ms)],
  ];
}

/** Compression and the bytes it saves, from the sums each shard maintains (no scan). */
function storageFields(store: Store, config: Config): [string, string | number][] {
  const c = config.storage_compression;
  const t = store.byteTotals();
  return [
    ['compression', c.enabled && c.algorithm !== 'none' ? `${c.algorithm}:${c.level}` : 'none'],
    ['stored_values', t.rows],
    ['logical_bytes', t.logical],
    ['stored_bytes', t.stored],
    ['compression_ratio', t.stored === 0 ? '1.00' : (t.logical / t.stored).toFixed(2)],
  ];
}

/**
 * One log line per storage error, naming the shard file; a shard that keeps failing (every read of
 * a damaged page) logs at most once a second, with the count of the errors it did not log.
 */
function storageErrorLogger(log: Logger): (err: StorageError, shard: number) => void {
  const last = new Map<number, { at: number; skipped: number }>();
  return (err, shard) => {
    const now = Date.now();
    const seen = last.get(shard);
    if (seen !== undefined && now - seen.at < 1000) {
      seen.skipped++;
      return;
    }
    log.error(
      { shard, file: err.file, code: err.code ?? null, damaged: err.damage, ...(seen?.skipped ? { not_logged_since: seen.skipped } : {}) },
      `storage error: ${err.message}`,
    );
    last.set(shard, { at: now, skipped: 0 });
  };
}

/** The Redis version we answer as: clients pick features by it. */
const REDIS_COMPAT_VERSION = '7.2.0';
