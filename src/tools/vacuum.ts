/**
 * Giving free pages back to the file system.
 *
 * Shards are created with auto_vacuum = INCREMENTAL: deleted rows leave free pages that
 * `PRAGMA incremental_vacuum(N)` returns to the OS without rewriting the file. The server does
 * that a little at a time (startAutoVacuum); `blobasaur vacuum` does it on demand, or rewrites
 * every file (`--mode full`, which also converts shards made before auto_vacuum was set).
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { Logger } from '../observability/log.js';
import { LAYOUT_FILE, readLayout } from '../storage/layout.js';
import { registerSlotFunction, shardPath } from '../storage/schema.js';
import type { Store } from '../storage/store.js';
import { shardFileBytes } from '../observability/metrics.js';

/**
 * The server's background incremental vacuum, adaptive: every `intervalMs` each shard with at
 * least `minFreePages` free pages gives some back, at a rate that returns the backlog seen within
 * about `targetSeconds` (a larger backlog raises the rate). The event loop is never held for more
 * than `maxSliceMs` per run, and one PRAGMA step is sized (by measuring it) to a fraction of that,
 * so clients wait at most a few milliseconds behind it.
 */
export interface AutoVacuumOptions {
  intervalMs: number;
  /** A shard with fewer free pages than this is left alone (a little slack saves re-growing). */
  minFreePages: number;
  /** The backlog found is returned within about this many seconds, time slices permitting. */
  targetSeconds: number;
  /** Pages a shard with a backlog frees per run at least, so small backlogs go back in seconds. */
  floorPagesPerRun: number;
  /** Most event-loop time one run may take, over all shards. */
  maxSliceMs: number;
}

export const AUTO_VACUUM_DEFAULTS: AutoVacuumOptions = {
  intervalMs: 250,
  minFreePages: 1024,
  targetSeconds: 30,
  floorPagesPerRun: 1024,
  maxSliceMs: 20,
};

/** What the background vacuum of a store has done, for the dashboard and logs. */
export interface VacuumActivity {
  bytes: number;
  pages: number;
  steps: number;
  /** Longest single step, in ms: the longest a client waited behind it. */
  longestStepMs: number;
  lastRunAt: number | null;
}

const activity = new WeakMap<Store, VacuumActivity>();

export function vacuumActivity(store: Store): VacuumActivity {
  let a = activity.get(store);
  if (a === undefined) {
    a = { bytes: 0, pages: 0, steps: 0, longestStepMs: 0, lastRunAt: null };
    activity.set(store, a);
  }
  return a;
}

const MIN_STEP_PAGES = 16;
// 4 MiB of 4 KiB pages: a step this size measured 2-12 ms (moving pages writes them to the WAL).
const MAX_STEP_PAGES = 1024;

export function startAutoVacuum(store: Store, log: Logger, opts: AutoVacuumOptions = AUTO_VACUUM_DEFAULTS): () => void {
  const act = vacuumActivity(store);
  /** Per shard: pages to free per run while its backlog lasts (0: no backlog). */
  const rate = new Map<number, number>();
  let step = 256;
  let first = 0;
  const run = (): void => {
    const started = performance.now();
    const pages = store.pageStats();
    for (let i = 0; i < pages.length; i++) {
      // Start at a different shard each run so a short slice does not always favour shard 0.
      const shard = (first + i) % pages.length;
      const p = pages[shard];
      if (p.autoVacuum !== 2 || p.freelistCount < opts.minFreePages) {
        rate.delete(shard);
        continue;
      }
      const wanted = Math.ceil((p.freelistCount * opts.intervalMs) / (opts.targetSeconds * 1000));
      const prev = rate.get(shard) ?? 0;
      if (prev === 0 && p.freelistCount * p.pageSize >= 64 * 1048576) {
        log.info({ shard, free_mib: Math.round((p.freelistCount * p.pageSize) / 1048576) }, 'returning free pages to the file system (incremental vacuum)');
      }
      const perRun = Math.max(prev, wanted, opts.floorPagesPerRun);
      rate.set(shard, perRun);
      let done = 0;
      while (done < perRun && performance.now() - started < opts.maxSliceMs) {
        const t0 = performance.now();
        const freed = store.vacuumShard(shard, Math.min(step, perRun - done));
        const ms = performance.now() - t0;
        if (freed === 0) break;
        done += freed;
        act.steps++;
        act.longestStepMs = Math.max(act.longestStepMs, ms);
        // Aim for steps of about a quarter of the slice: long enough to be efficient, short enough not to stall.
        if (ms < opts.maxSliceMs / 8) step = Math.min(MAX_STEP_PAGES, step * 2);
        else if (ms > opts.maxSliceMs / 2) step = Math.max(MIN_STEP_PAGES, Math.floor(step / 2));
      }
      if (done > 0) {
        act.pages += done;
        act.bytes += done * p.pageSize;
        act.lastRunAt = Date.now();
        log.debug({ shard, pages: done, bytes: done * p.pageSize }, 'incremental vacuum');
      }
      if (performance.now() - started >= opts.maxSliceMs) break;
    }
    first = (first + 1) % Math.max(1, pages.length);
  };
  const timer = setInterval(() => {
    try {
      run();
    } catch (err) {
      // The store closes under us at shutdown; anything else is worth a line, not a crash.
      const message = err instanceof Error ? err.message : String(err);
      if (/not open/.test(message)) clearInterval(timer);
      else log.warn({ err: message }, 'incremental vacuum failed');
    }
  }, opts.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

export interface VacuumResult {
  shard: number;
  bytesBefore: number;
  bytesAfter: number;
  freePagesBefore: number;
  freePagesAfter: number;
  autoVacuum: string;
}

const AUTO_VACUUM_NAMES = ['none', 'full', 'incremental'];

/** Reads the shard count a data directory records; a directory without one is refused. */
export function readShardCount(dataDir: string): number {
  const recorded = readLayout(dataDir);
  if (recorded === null) throw new Error(`${dataDir} has no ${LAYOUT_FILE}: not a blobasaur data directory`);
  return recorded;
}

/**
 * Vacuums every shard of a data directory. Incremental: frees free pages, at most `budgetBytes`
 * per shard, in transactions of 4 MiB so a running server waits only briefly for the write lock.
 * Full: VACUUM rewrites each file (holds its write lock throughout: stop the server first) and
 * switches it to auto_vacuum = INCREMENTAL.
 */
export function vacuumDataDir(
  dataDir: string,
  mode: 'incremental' | 'full',
  budgetBytes: number | null,
  progress: (r: VacuumResult) => void = () => {},
): VacuumResult[] {
  const shards = readShardCount(dataDir);
  const results: VacuumResult[] = [];
  for (let id = 0; id < shards; id++) {
    const path = shardPath(dataDir, id);
    if (!existsSync(path)) throw new Error(`${path} is missing`);
    const db = new Database(path, { fileMustExist: true });
    registerSlotFunction(db);
    try {
      if (mode === 'full') {
        // VACUUM holds the write lock throughout: refuse a file a running server has open.
        db.pragma('busy_timeout = 500');
        db.pragma('locking_mode = EXCLUSIVE');
        try {
          db.pragma('journal_mode = WAL');
          db.exec('BEGIN EXCLUSIVE; COMMIT');
        } catch (err) {
          if (String((err as { code?: unknown }).code).startsWith('SQLITE_BUSY')) {
            throw new Error(`${path} is in use by another process (is the server running?); stop the server before a full vacuum`);
          }
          throw err;
        }
      }
      db.pragma('busy_timeout = 2000');
      try {
        db.pragma('journal_mode = WAL');
      } catch (err) {
        if (String((err as { code?: unknown }).code).startsWith('SQLITE_BUSY')) {
          throw new Error(`${path} is locked by another process: a server running with [sqlite] locking_mode = "EXCLUSIVE" (stop it first), or a migration`);
        }
        throw err;
      }
      const pageSize = Number(db.pragma('page_size', { simple: true }));
      const freeBefore = Number(db.pragma('freelist_count', { simple: true }));
      // PASSIVE never waits for (or blocks) a running server; with the server stopped it completes.
      const checkpoint = mode === 'full' ? 'wal_checkpoint(TRUNCATE)' : 'wal_checkpoint(PASSIVE)';
      db.pragma(checkpoint);
      const bytesBefore = shardFileBytes(path);
      if (mode === 'full') {
        db.pragma('auto_vacuum = INCREMENTAL');
        db.exec('VACUUM');
      } else {
        if (Number(db.pragma('auto_vacuum', { simple: true })) !== 2) {
          // Free pages of a shard without incremental auto_vacuum can only be reclaimed by a rewrite.
        } else {
          let budgetPages = budgetBytes === null ? Number.MAX_SAFE_INTEGER : Math.floor(budgetBytes / pageSize);
          const step = Math.max(1, Math.floor((4 * 1024 * 1024) / pageSize));
          while (budgetPages > 0) {
            const free = Number(db.pragma('freelist_count', { simple: true }));
            if (free === 0) break;
            const n = Math.min(free, step, budgetPages);
            db.pragma(`incremental_vacuum(${n})`);
            budgetPages -= n;
          }
        }
      }
      db.pragma(checkpoint);
      const r: VacuumResult = {
        shard: id,
        bytesBefore,
        bytesAfter: shardFileBytes(path),
        freePagesBefore: freeBefore,
        freePagesAfter: Number(db.pragma('freelist_count', { simple: true })),
        autoVacuum: AUTO_VACUUM_NAMES[Number(db.pragma('auto_vacuum', { simple: true }))] ?? 'unknown',
      };
      results.push(r);
      progress(r);
    } finally {
      db.close();
    }
  }
  return results;
}
