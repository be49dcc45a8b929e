/**
 * Operational counters: per-command calls, time and failures (INFO commandstats / errorstats) and,
 * when `[metrics] enabled`, the same plus store gauges as Prometheus metrics (prom-client).
 *
 * Counters are kept per server object (a WeakMap), so several servers in one process (the tests)
 * do not share them, and nothing below `commands/` needs to know about them.
 */
import { statSync } from 'node:fs';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ServerContext } from '../commands/types.js';
import type { Store } from '../storage/store.js';

/** One command's numbers, as Redis' `cmdstat_<name>` line shows them. */
export interface CommandStat {
  calls: number;
  usec: number;
  failed: number;
  /** prom-client children, bound once so the hot path does no label lookup. */
  promCalls?: Counter.Internal;
  promLatency?: Histogram.Internal<'command'>;
}

/** Outcome of the last SAVE / BGSAVE / backup run by this server. */
export interface SaveState {
  lastSaveMs: number;
  lastStatus: 'ok' | 'err';
  inProgress: Promise<void> | null;
  lastDurationMs: number;
  lastError: string | null;
  changesAtLastSave: number;
}

export class OpsStats {
  readonly commands = new Map<string, CommandStat>();
  /** Error replies by their first word (ERR, WRONGTYPE, …), as `errorstat_<kind>`. */
  readonly errors = new Map<string, number>();
  /** Write commands executed, for rdb_changes_since_last_save. */
  writeCommands = 0;
  readonly save: SaveState = {
    lastSaveMs: Date.now(),
    lastStatus: 'ok',
    inProgress: null,
    lastDurationMs: -1,
    lastError: null,
    changesAtLastSave: 0,
  };
  prom: PromCommandMetrics | null = null;

  stat(name: string): CommandStat {
    let s = this.commands.get(name);
    if (s === undefined) {
      s = { calls: 0, usec: 0, failed: 0 };
      if (this.prom !== null) {
        s.promCalls = this.prom.calls.labels(name);
        s.promLatency = this.prom.latency.labels(name);
      }
      this.commands.set(name, s);
    }
    return s;
  }
}

interface PromCommandMetrics {
  calls: Counter<'command'>;
  latency: Histogram<'command'>;
  errors: Counter<'command' | 'kind'>;
}

const byServer = new WeakMap<object, OpsStats>();

export function opsStats(server: object): OpsStats {
  let s = byServer.get(server);
  if (s === undefined) {
    s = new OpsStats();
    byServer.set(server, s);
  }
  return s;
}

/**
 * Records one executed command; `errorCode` is the error reply's first word, or null. `endedMs`
 * is the caller's clock reading at the end (performance.now() when not given).
 */
export function recordCommand(server: object, name: string, write: boolean, startedMs: number, errorCode: string | null, endedMs = performance.now()): void {
  const stats = opsStats(server);
  const s = stats.stat(name);
  const seconds = (endedMs - startedMs) / 1000;
  s.calls++;
  s.usec += Math.round(seconds * 1e6);
  s.promCalls?.inc();
  s.promLatency?.observe(seconds);
  if (write) stats.writeCommands++;
  if (errorCode !== null) {
    s.failed++;
    stats.errors.set(errorCode, (stats.errors.get(errorCode) ?? 0) + 1);
    stats.prom?.errors.labels(name, errorCode).inc();
  }
}

/** Counts an error reply to a command that never ran (unknown command, wrong arity, NOAUTH), as Redis' errorstats do. */
export function recordRejected(server: object, errorCode: string): void {
  const stats = opsStats(server);
  stats.errors.set(errorCode, (stats.errors.get(errorCode) ?? 0) + 1);
  stats.prom?.errors.labels('(rejected)', errorCode).inc();
}

/** Bytes of a shard's files on disk (database plus WAL). */
export function shardFileBytes(path: string): number {
  let total = 0;
  for (const p of [path, `${path}-wal`]) {
    try {
      total += statSync(p).size;
    } catch {
      // absent: nothing to count
    }
  }
  return total;
}

const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

/**
 * The Prometheus registry of one server: command counters and latency histograms, errors by
 * kind, connections, commit latency and batch sizes, and per-shard gauges read at scrape time.
 */
export function createMetrics(server: ServerContext, store: Store): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'blobasaur_' });
  const stats = opsStats(server);
  const prom: PromCommandMetrics = {
    calls: new Counter({ name: 'blobasaur_commands_total', help: 'Commands executed, by command', labelNames: ['command'], registers: [registry] }),
    latency: new Histogram({
      name: 'blobasaur_command_duration_seconds',
      help: 'Time from dispatch to reply ready (includes the wait for commit in sync mode), by command',
      labelNames: ['command'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    errors: new Counter({
      name: 'blobasaur_command_errors_total',
      help: 'Error replies from commands, by command and error kind (first word of the error)',
      labelNames: ['command', 'kind'],
      registers: [registry],
    }),
  };
  stats.prom = prom;
  for (const [name, s] of stats.commands) {
    s.promCalls = prom.calls.labels(name);
    s.promLatency = prom.latency.labels(name);
  }

  new Gauge({
    name: 'blobasaur_connected_clients',
    help: 'Client connections open now',
    registers: [registry],
    collect() {
      let n = 0;
      for (const _ of server.clients()) n++;
      this.set(n);
    },
  });
  new Counter({
    name: 'blobasaur_connections_received_total',
    help: 'Client connections accepted since start',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(server.stats.totalConnections);
    },
  });
  new Counter({
    name: 'blobasaur_connections_rejected_total',
    help: 'Client connections refused (maxclients)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(server.stats.rejectedConnections);
    },
  });
  new Counter({
    name: 'blobasaur_errors_total',
    help: 'Errors by kind: error replies by first word (ERR, WRONGTYPE, …), protocol errors, failed async commits',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [kind, n] of stats.errors) this.labels(`reply_${kind}`).inc(n);
      this.labels('protocol').inc(server.stats.protocolErrors);
      this.labels('async_write').inc(server.stats.asyncWriteFailures);
    },
  });

  new Counter({
    name: 'blobasaur_error_replies_total',
    help: 'Every error reply sent, including those for unknown commands and wrong arity',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(server.stats.errorReplies);
    },
  });

  const commitSeconds = new Histogram({
    name: 'blobasaur_commit_duration_seconds',
    help: 'Time of one SQLite commit (a group commit of one shard)',
    labelNames: ['shard'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const batchSize = new Histogram({
    name: 'blobasaur_commit_batch_size',
    help: 'Writes per commit',
    labelNames: ['shard'],
    buckets: BATCH_BUCKETS,
    registers: [registry],
  });
  const commitFailures = new Counter({
    name: 'blobasaur_commit_failures_total',
    help: 'Commits that failed as a whole',
    labelNames: ['shard'],
    registers: [registry],
  });
  const perShard = Array.from({ length: store.numShards }, (_, i) => ({
    commit: commitSeconds.labels(String(i)),
    batch: batchSize.labels(String(i)),
  }));
  store.commitObserver = (shard, ops, millis, ok) => {
    perShard[shard].commit.observe(millis / 1000);
    perShard[shard].batch.observe(ops);
    if (!ok) commitFailures.labels(String(shard)).inc();
  };

  new Gauge({
    name: 'blobasaur_queue_depth',
    help: 'Writes executed and not yet committed, by shard',
    labelNames: ['shard'],
    registers: [registry],
    collect() {
      for (const s of store.stats().shards) this.labels(String(s.id)).set(s.queueDepth);
    },
  });
  new Gauge({
    name: 'blobasaur_overlay_entries',
    help: 'Pending writes visible to reads before their commit, by shard',
    labelNames: ['shard'],
    registers: [registry],
    collect() {
      for (const s of store.stats().shards) this.labels(String(s.id)).set(s.overlayEntries);
    },
  });
  new Gauge({
    name: 'blobasaur_inflight_ops',
    help: 'Writes executed and not yet committed, all shards',
    registers: [registry],
    collect() {
      this.set(store.stats().inflightWrites);
    },
  });
  new Counter({
    name: 'blobasaur_committed_writes_total',
    help: 'Writes committed, by shard',
    labelNames: ['shard'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of store.stats().shards) this.labels(String(s.id)).inc(s.committedWrites);
    },
  });
  new Counter({
    name: 'blobasaur_failed_writes_total',
    help: 'Writes that failed to commit, by shard',
    labelNames: ['shard'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of store.stats().shards) this.labels(String(s.id)).inc(s.failedWrites);
    },
  });
  new Counter({
    name: 'blobasaur_read_cache_hits_total',
    help: 'GETs of large values answered from the read cache (read_cache_mb)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(store.stats().readCache.hits);
    },
  });
  new Gauge({
    name: 'blobasaur_read_cache_bytes',
    help: 'Bytes of values held in the read cache',
    registers: [registry],
    collect() {
      this.set(store.stats().readCache.bytes);
    },
  });
  new Counter({
    name: 'blobasaur_value_cache_hits_total',
    help: 'Reads of small values answered from the value cache (value_cache_mb)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(store.stats().valueCache.hits);
    },
  });
  new Counter({
    name: 'blobasaur_value_cache_misses_total',
    help: 'Reads of small committed values that went to SQLite (value_cache_mb)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(store.stats().valueCache.misses);
    },
  });
  new Gauge({
    name: 'blobasaur_value_cache_bytes',
    help: 'Bytes charged to the value cache: values, keys and per-entry overhead',
    registers: [registry],
    collect() {
      this.set(store.stats().valueCache.bytes);
    },
  });
  new Counter({
    name: 'blobasaur_wal_checkpoints_total',
    help: 'WAL checkpoints run by the maintenance thread',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(store.stats().checkpoints?.completed ?? 0);
    },
  });
  new Gauge({
    name: 'blobasaur_shard_file_bytes',
    help: 'Bytes of the shard file plus its WAL on disk, by shard',
    labelNames: ['shard'],
    registers: [registry],
    collect() {
      for (const s of store.stats().shards) this.labels(String(s.id)).set(shardFileBytes(s.path));
    },
  });
  new Gauge({
    name: 'blobasaur_shard_free_bytes',
    help: 'Bytes of free pages inside the shard file (reclaimable by vacuum), by shard',
    labelNames: ['shard'],
    registers: [registry],
    collect() {
      store.pageStats().forEach((p, i) => this.labels(String(i)).set(p.freelistCount * p.pageSize));
    },
  });
  new Gauge({
    name: 'blobasaur_shard_damaged',
    help: '1 while a shard is marked damaged (SQLITE_CORRUPT, NOTADB, IOERR or a checksum mismatch), by shard',
    labelNames: ['shard'],
    registers: [registry],
    collect() {
      for (const s of store.stats().shards) this.labels(String(s.id)).set(s.damage === null ? 0 : 1);
    },
  });
  new Counter({
    name: 'blobasaur_storage_errors_total',
    help: 'SQLite errors (and checksum mismatches) on a shard since start, by shard',
    labelNames: ['shard'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of store.stats().shards) this.labels(String(s.id)).inc(s.storageErrors);
    },
  });
  new Gauge({
    name: 'blobasaur_last_save_timestamp_seconds',
    help: 'Unix time of the last successful SAVE/BGSAVE (server start if none)',
    registers: [registry],
    collect() {
      this.set(Math.floor(stats.save.lastSaveMs / 1000));
    },
  });
  return registry;
}
