/**
 * The dashboard's live charts: once a second, the server's own counters are read and turned into
 * rates and gauges, kept for the last few minutes in a fixed-size ring (memory does not grow).
 */
import { statSync } from 'node:fs';
import type { ServerContext } from '../commands/types.js';
import { opsStats, shardFileBytes } from '../observability/metrics.js';
import type { Store } from '../storage/store.js';
import { vacuumActivity } from '../tools/vacuum.js';

export interface Sample {
  /** Epoch ms of the reading. */
  t: number;
  opsPerSec: number;
  /** Latency percentiles of the commands run since the previous sample, in ms (null: none ran). */
  p50: number | null;
  p99: number | null;
  /** Read-cache hit ratio of the interval (0..1), null when nothing was looked up. */
  hitRatio: number | null;
  clients: number;
  rssBytes: number;
  heapBytes: number;
  fileBytes: number;
  freeBytes: number;
  walBytes: number;
  sweptPerSec: number;
  vacuumedBytesPerSec: number;
}

export interface ShardNow {
  shard: number;
  fileBytes: number;
  walBytes: number;
  freeBytes: number;
  queueDepth: number;
  committedWrites: number;
}

/** Cumulative bucket counts of every command's latency histogram, summed per upper bound (seconds). */
type Buckets = Map<number, number>;

interface Counters {
  commands: number;
  cacheHits: number;
  cacheMisses: number;
  swept: number;
  vacuumed: number;
  buckets: Buckets;
}

export const HISTORY_POINTS = 300;

export class Sampler {
  private readonly ring: Sample[] = [];
  private last: { t: number; c: Counters } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(
    private readonly server: ServerContext,
    private readonly store: Store,
    private readonly intervalMs = 1000,
  ) {}

  start(): void {
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  history(): readonly Sample[] {
    return this.ring;
  }

  shards(): ShardNow[] {
    const pages = this.store.pageStats();
    return this.store.stats().shards.map((s, i) => ({
      shard: s.id,
      fileBytes: shardFileBytes(s.path),
      walBytes: fileSize(`${s.path}-wal`),
      freeBytes: (pages[i]?.freelistCount ?? 0) * (pages[i]?.pageSize ?? 0),
      queueDepth: s.queueDepth,
      committedWrites: s.committedWrites,
    }));
  }

  private async counters(): Promise<Counters> {
    const st = this.store.stats();
    const buckets: Buckets = new Map();
    const latency = opsStats(this.server).prom?.latency;
    if (latency !== undefined) {
      const metric = await latency.get();
      for (const v of metric.values) {
        if (v.metricName !== 'blobasaur_command_duration_seconds_bucket') continue;
        const bound = (v.labels as Record<string, string | number | undefined>).le;
        const le = bound === '+Inf' ? Infinity : Number(bound);
        buckets.set(le, (buckets.get(le) ?? 0) + v.value);
      }
    }
    return {
      commands: this.server.stats.totalCommands,
      cacheHits: st.readCache.hits,
      cacheMisses: st.readCache.misses,
      swept: st.sweptRows,
      vacuumed: vacuumActivity(this.store).bytes,
      buckets,
    };
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const t = Date.now();
      const c = await this.counters();
      const prev = this.last;
      this.last = { t, c };
      if (prev === null) return;
      const secs = Math.max(0.001, (t - prev.t) / 1000);
      const lookups = c.cacheHits - prev.c.cacheHits + (c.cacheMisses - prev.c.cacheMisses);
      const shards = this.shards();
      let clients = 0;
      for (const _ of this.server.clients()) clients++;
      const mem = process.memoryUsage();
      this.ring.push({
        t,
        opsPerSec: (c.commands - prev.c.commands) / secs,
        p50: percentile(prev.c.buckets, c.buckets, 0.5),
        p99: percentile(prev.c.buckets, c.buckets, 0.99),
        hitRatio: lookups === 0 ? null : (c.cacheHits - prev.c.cacheHits) / lookups,
        clients,
        rssBytes: mem.rss,
        heapBytes: mem.heapUsed,
        fileBytes: shards.reduce((n, s) => n + s.fileBytes, 0),
        freeBytes: shards.reduce((n, s) => n + s.freeBytes, 0),
        walBytes: shards.reduce((n, s) => n + s.walBytes, 0),
        sweptPerSec: (c.swept - prev.c.swept) / secs,
        vacuumedBytesPerSec: (c.vacuumed - prev.c.vacuumed) / secs,
      });
      if (this.ring.length > HISTORY_POINTS) this.ring.splice(0, this.ring.length - HISTORY_POINTS);
    } catch {
      // The store closes under a last tick at shutdown; the next tick (if any) tries again.
    } finally {
      this.busy = false;
    }
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * A percentile of the commands between two readings of cumulative histogram buckets, in ms: the
 * upper bound of the bucket it falls in (what a histogram can honestly say), null when none ran.
 */
export function percentile(before: Buckets, after: Buckets, q: number): number | null {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const delta = bounds.map((le) => (after.get(le) ?? 0) - (before.get(le) ?? 0));
  const total = delta.length === 0 ? 0 : delta[delta.length - 1];
  if (total <= 0) return null;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i++) {
    if (delta[i] >= rank) return bounds[i] === Infinity ? (bounds[i - 1] ?? 0) * 1000 : bounds[i] * 1000;
  }
  return null;
}
