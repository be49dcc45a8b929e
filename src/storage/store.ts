/**
 * The store: routes each key to its shard, answers reads from the overlay of pending writes first
 * and SQLite second, and hands writes to the shard's write queue.
 *
 * Write methods apply their effect at once (visible to every later read) and return an Ack: a
 * promise settled by the commit in sync mode, undefined in async mode where the write is
 * acknowledged as soon as it is queued.
 */
import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import Database from 'better-sqlite3';
import { basename, join } from 'node:path';
import { CodecError, decode, decodeSync, encode, type CompressionSettings, type Encoded } from './codecs.js';
import { ShardRing } from './mpchash.js';
import { isDamageCode, Shard, type ByteTotals, type PageStats, type ShardDamage, type ShardWrite, type SqliteSettings, type StorageError, type StoredValue } from './shard.js';
import { InflightBudget, WriteQueue, type PendingWrite, type SizedEncoded } from './write-queue.js';
import { BlobRef, type HeldValue } from './overlay.js';
import { ChunkIO } from './chunk-io.js';
import { ValueBuffers } from './value-buffers.js';
import { ChunkFile, CHUNK_BYTES, CHUNK_THRESHOLD, CHUNKS_PER_STEP, chunkCount, encodeChunk } from './chunks.js';
import { checkLayout } from './layout.js';
import { MaintenanceWorker } from './maintenance.js';
import type { ReadCacheStats } from './read-cache.js';
import { CHUNKED_CODEC, chunkFileName, chunkPathOf, SCHEMA_VERSION, shardFileName, shardFiles } from './schema.js';
import { NamespaceTally } from './namespace-tally.js';
import { DiskReserve, RESUME_FACTOR } from './disk-reserve.js';
import { printable } from './key-names.js';
import { SnapshotConnection } from './snapshot.js';

export { printable };

export type Ack = Promise<void> | undefined;

export interface ShardStats {
  id: number;
  path: string;
  /** Writes executed and not yet committed. */
  queueDepth: number;
  overlayEntries: number;
  commits: number;
  committedWrites: number;
  failedWrites: number;
  /** Why the shard is marked damaged (SQLITE_CORRUPT, a checksum mismatch…), or null. */
  damage: ShardDamage | null;
  /** SQLite errors seen on the shard since start. */
  storageErrors: number;
}

export interface StoreStats {
  shards: ShardStats[];
  inflightWrites: number;
  sweptRows: number;
  /** Large values (read_cache_mb). */
  readCache: ReadCacheStats;
  /** Small values (value_cache_mb). */
  valueCache: ReadCacheStats;
  /** Checkpoints done by the maintenance worker; null when it is not used. */
  checkpoints: { completed: number; failed: number; totalMillis: number } | null;
}

export interface StoreOptions {
  dataDir: string;
  numShards: number;
  asyncWrite: boolean;
  batchSize: number;
  batchTimeoutMs: number;
  inflightCapacity: number;
  /** Bytes of pending values that make new writes wait, as inflightCapacity does for their count. */
  inflightMaxBytes: number;
  compression: CompressionSettings | null;
  sqlite: SqliteSettings;
  /** How often expired rows are swept (default 100 ms); 0 turns the sweeper off. */
  sweepIntervalMs?: number;
  /**
   * WAL checkpoints and expiry sweep steps on a worker thread instead of the event loop (default
   * true; not possible with locking_mode EXCLUSIVE, where no second connection can open the files).
   */
  maintenanceWorker?: boolean;
  /** Reports a checkpoint failure or the loss of the maintenance worker (the server logs it). */
  onMaintenanceProblem?: (message: string, shard: number | null) => void;
  /** Bytes of large committed values kept in memory for reads, over all shards (0: none). */
  readCacheBytes?: number;
  /** Bytes of small committed values kept in memory (filled by reads and commits), over all shards (0: none). */
  valueCacheBytes?: number;
  /** Largest value a command may build (APPEND, SETRANGE): the server's proto_max_bulk_len. */
  maxValueBytes?: number;
  onWriteFailure: (err: Error, write: PendingWrite, shard: number) => void;
  /**
   * Told of every SQLite error on a shard (its message names the file), and of checksum
   * mismatches; the server logs them. Never thrown from here: commands get their own error reply.
   */
  onStorageError?: (err: StorageError, shard: number) => void;
  /** Bytes kept free on the data directory's file system for a full disk (disk-reserve.ts); 0: none. */
  diskReserveBytes?: number;
  /** Told when the disk fills (writes refused) and when writes resume. */
  onDiskFull?: (full: boolean, message: string) => void;
}

/** A write refused while the data directory's file system is full (disk-reserve.ts). */
export class DiskFullError extends Error {}

/** How often the checkpoint worker is asked to checkpoint the shards that committed since. */
const CHECKPOINT_INTERVAL_MS = 50;
/** The shards' own checkpoint threshold while the worker runs: 64 MiB of 4 KiB pages. */
const SAFETY_NET_CHECKPOINT_PAGES = 16384;
/**
 * The chunk files' threshold while the worker runs: 1 GiB of 64 KiB pages, above two values of
 * proto_max_bulk_len. A streamed SET writes ~60–100 MiB/s; the worker (nice 19) falls behind on a
 * busy machine, and at 256 MiB the safety net ran on the event loop during one 500 MiB upload
 * (bench/staged-write-profile.mjs at load ~10: 25–94 ms of CPU inside single chunk commits; none
 * at 1 GiB).
 */
const CHUNK_SAFETY_NET_CHECKPOINT_PAGES = 16384;
/** SQLite's default, restored if the worker is lost. */
const DEFAULT_CHECKPOINT_PAGES = 1000;

/** What DBSIZE reclaims before counting, per shard: steps of so many rows. */
const REAP_STEPS = 8;
const REAP_LIMIT = 256;
/** How often a full disk is checked for room again. */
const DISK_FULL_RETRY_MS = 1000;
/** Free space is read (statfs, a few µs) after a commit at most this often. */
const DISK_WATCH_MS = 10;

function mib(bytes: number): string {
  return `${Math.round((bytes / 1048576) * 10) / 10} MiB`;
}

/** Pause between sweep steps while expired rows keep coming. */
const SWEEP_PAUSE_MS = 2;

/** A stored value that could not be decoded; the message names the key. */
export class CorruptValueError extends Error {}

export class Store {
  private readonly ring: ShardRing;
  /** The shards' write queues: storage/ and its tests only; everyone else reads stats(). */
  readonly queues: WriteQueue[];
  private readonly budget: InflightBudget;
  private readonly maintenance: MaintenanceWorker | null = null;
  /** Set by the first close(), so concurrent calls share one shutdown instead of closing twice. */
  private closing: Promise<void> | null = null;
  /** Distinct namespaces over all shards (DBSIZE counts a namespace once). */
  private readonly namespaces = new NamespaceTally();
  /** Each shard's chunk file (values above CHUNK_THRESHOLD), in shard order. */
  readonly chunkFiles: ChunkFile[] = [];
  /**
   * Per shard: blob ids that may be referenced by nothing — found at start (staged when the server
   * stopped) or left by a write that failed. Reclaimed once the shard file confirms it.
   */
  private readonly suspects: Set<number>[] = [];
  /** Set while a backup copies shard and chunk files: reclamation waits, so the copies agree. */
  private reclaimPaused = 0;

  /** Writes staged chunks and reads streamed ones off the event loop (chunk-io.ts); null with no second connection. */
  private readonly chunkIO: ChunkIO | null;

  /** Receive buffers for values of 256 KiB – 1 MiB, reused after their write's commit (value-buffers.ts). */
  readonly valueBuffers = new ValueBuffers(() => this.noteLargeTraffic());

  /** A large value was received or read on the loop: malloc's free memory is trimmed once such traffic stops. */
  noteLargeTraffic(): void {
    this.chunkIO?.noteTraffic();
  }

  private constructor(private readonly opts: StoreOptions) {
    this.chunkIO = opts.maintenanceWorker !== false && opts.sqlite.locking_mode !== 'EXCLUSIVE' ? new ChunkIO() : null;
    if (this.chunkIO !== null) {
      this.chunkIO.onLost = (reason) => {
        for (const c of this.chunkFiles) c.detachIO();
        this.opts.onMaintenanceProblem?.(`${reason}; chunk writes and streamed reads run on the event loop again`, null);
      };
    }
    this.ring = new ShardRing(opts.numShards);
    this.budget = new InflightBudget(opts.inflightCapacity, opts.inflightMaxBytes);
    this.queues = [];
    for (let id = 0; id < opts.numShards; id++) {
      let opened: ReturnType<Store['openShardFiles']>;
      try {
        opened = this.openShardFiles(id);
      } catch (err) {
        // The shards opened so far must not stay open (and locked) behind a refused start.
        for (const q of this.queues) q.shard.close();
        for (const c of this.chunkFiles) c.close();
        void this.chunkIO?.stop();
        throw err;
      }
      const { shard, chunks } = opened;
      this.chunkFiles.push(chunks);
      this.suspects.push(opened.suspects);
      this.queues.push(
        new WriteQueue(shard, this.budget, {
          batchSize: opts.batchSize,
          batchTimeoutMs: opts.batchTimeoutMs,
          readCacheBytes: Math.floor((opts.readCacheBytes ?? 0) / opts.numShards),
          valueCacheBytes: Math.floor((opts.valueCacheBytes ?? 0) / opts.numShards),
          onFailure: (err, write) => opts.onWriteFailure(err, write, id),
          onCommit: (ops, millis, ok) => {
            this.watchDisk();
            this.maintenance?.markDirty(id);
            this.commitObserver?.(id, ops, millis, ok);
          },
          onCommitted: (writes) => this.replicationHook?.(id, writes),
          onBlobDropped: (blob) => this.suspects[id].add(blob),
          valueBuffers: this.valueBuffers,
        }),
      );
    }
    if (opts.maintenanceWorker !== false && opts.sqlite.locking_mode !== 'EXCLUSIVE') {
      this.maintenance = this.startMaintenance();
    }
  }

  /** Opens shard `id`'s file and chunk file (at start, and after replaceShardFiles() put new ones in place). */
  private openShardFiles(id: number): { shard: Shard; chunks: ChunkFile; suspects: Set<number> } {
    const opts = this.opts;
    const shard = new Shard(id, join(opts.dataDir, shardFileName(id)), opts.sqlite);
    let chunks: ChunkFile;
    try {
      shard.onFault = (err) => {
        if (err.code?.startsWith('SQLITE_FULL') === true) this.diskFilled();
        opts.onStorageError?.(err, id);
      };
      chunks = new ChunkFile(chunkPathOf(shard.path), opts.sqlite);
    } catch (err) {
      shard.close();
      throw err;
    }
    shard.attachTally(this.namespaces);
    // A damaged shard may not say its largest blob id: new ids then start far above any it can hold.
    chunks.allocate(orElse(() => shard.maxBlobId(), Date.now() * 1000));
    // Blobs neither referenced by a row nor recorded as dead were being written when the server
    // stopped (kill -9 mid-upload): their chunks are garbage. On a damaged shard nothing is
    // presumed garbage.
    const suspects = orElse(() => new Set(chunks.blobIds().filter((b) => !shard.knowsBlob(b))), new Set<number>());
    if (this.chunkIO !== null) chunks.attachIO(this.chunkIO);
    return { shard, chunks, suspects };
  }

  private startMaintenance(): MaintenanceWorker {
    const report = this.opts.onMaintenanceProblem ?? (() => {});
    const worker = new MaintenanceWorker(
      [...this.queues.map((q) => q.shard.path), ...this.chunkFiles.map((c) => c.path)],
      CHECKPOINT_INTERVAL_MS,
      {
        onCheckpointError: (shard, message) => {
          if (/disk is full/.test(message)) this.diskFilled();
          // The worker's own connection met a damaged file: the shard is marked as a read would mark it.
          const code = /\((SQLITE_[A-Z_]+)\)$/.exec(message)?.[1];
          // Chunk files are "shards" numShards + id: the damage is their shard's.
          const owner = this.queues[shard] ?? this.queues[shard - this.queues.length];
          if (isDamageCode(code)) owner?.shard.fault(Object.assign(new Error(message.replace(/ \(SQLITE_[A-Z_]+\)$/, '')), { code }));
          report(message, shard);
        },
        onWorkerLost: (message) => {
          for (const q of this.queues) if (q.shard.isOpen) q.shard.setAutoCheckpoint(DEFAULT_CHECKPOINT_PAGES);
          for (const c of this.chunkFiles) if (c.isOpen) c.setAutoCheckpoint(DEFAULT_CHECKPOINT_PAGES);
          report(`${message}; checkpoints and sweeps run on the event loop again`, null);
        },
      },
      this.opts.sqlite.synchronous,
    );
    for (const q of this.queues) q.shard.setAutoCheckpoint(SAFETY_NET_CHECKPOINT_PAGES);
    // Chunk files are checkpointed by the same thread, as "shards" numShards + id. Their own
    // threshold goes up too: at SQLite's default (1000 pages, 64 MiB here) the commits of a large
    // value's chunks would run checkpoints on the event loop (measured: 0.7–1.3 s stalls at 500 MiB).
    this.chunkFiles.forEach((c, id) => {
      c.setAutoCheckpoint(CHUNK_SAFETY_NET_CHECKPOINT_PAGES);
      c.onCommit = () => worker.markDirty(this.queues.length + id);
    });
    return worker;
  }

  /** Counters and gauges for INFO and metrics: a snapshot, so callers never reach into shards or queues. */
  stats(): StoreStats {
    return {
      shards: this.queues.map((q) => ({
        id: q.shard.id,
        path: q.shard.path,
        queueDepth: q.depth,
        overlayEntries: q.overlay.size,
        commits: q.commits,
        committedWrites: q.committedOps,
        failedWrites: q.failedOps,
        damage: q.shard.damage,
        storageErrors: q.shard.errors,
      })),
      inflightWrites: this.budget.ops,
      sweptRows: this.sweptRows,
      readCache: this.readCacheStats(),
      valueCache: this.valueCacheStats(),
      checkpoints: this.checkpointStats,
    };
  }

  /** Checkpoints done by the maintenance worker (null when it is not used). */
  get checkpointStats(): { completed: number; failed: number; totalMillis: number } | null {
    const m = this.maintenance;
    return m === null ? null : { completed: m.checkpoints, failed: m.checkpointFailures, totalMillis: m.checkpointMillis };
  }

  /** Opens (creating if needed) the data directory; refuses a directory made with another shard count. */
  static open(opts: StoreOptions): Store {
    mkdirSync(opts.dataDir, { recursive: true });
    checkLayout(opts.dataDir, opts.numShards);
    // Files a replica's full copy replaced, if the server stopped before deleting them.
    rmSync(join(opts.dataDir, REPLACED_DIR), { recursive: true, force: true });
    // The reserve goes back first: opening a shard replays its WAL, which may need the room.
    const reserve = opts.diskReserveBytes ? new DiskReserve(opts.dataDir, opts.diskReserveBytes) : null;
    reserve?.releaseAll();
    const store = new Store(opts);
    if (reserve !== null) {
      store.reserve = reserve;
      // A WAL left by a stop on a full disk moves into the files now, while the room is there.
      for (const q of store.queues) orElse(() => q.shard.checkpoint(), false);
      if (!reserve.take()) store.diskFilled();
    }
    if (opts.sweepIntervalMs !== 0) store.startSweeper(opts.sweepIntervalMs);
    store.startReclaimer();
    // Rows a flush set aside before a stop (or a crash) are purged from the start.
    store.startPurger();
    return store;
  }

  get maxValueBytes(): number {
    return this.opts.maxValueBytes ?? 512 * 1024 * 1024;
  }

  get numShards(): number {
    return this.queues.length;
  }

  shardOf(key: Buffer): number {
    return this.ring.shardOf(key);
  }

  /** False while the inflight budget is spent; writers then wait on waitForRoom(). */
  get hasRoom(): boolean {
    return this.budget.hasRoom;
  }

  waitForRoom(): Promise<void> {
    return this.budget.waitForRoom();
  }

  get inflightOps(): number {
    return this.budget.ops;
  }

  /**
   * Runs `f` with every write it queues marked as one transaction: each shard commits them
   * together, in one COMMIT and one savepoint (all or nothing on that shard). Shards still
   * commit independently of each other. `f` must queue its writes synchronously.
   */
  atomically<T>(f: () => T): T {
    const group = this.beginAtomic();
    try {
      return f();
    } finally {
      group.end();
    }
  }

  /**
   * The same as atomically(), for work that ends later than it starts (a Lua script): writes queued
   * until end() form one transaction per shard. Nests; the outermost end() closes the group.
   */
  beginAtomic(): { end(): void } {
    if (this.atomicDepth++ === 0) {
      const group = ++this.atomicGroups;
      for (const q of this.queues) q.atomicGroup = group;
    }
    let ended = false;
    return {
      end: () => {
        if (ended) return;
        ended = true;
        if (--this.atomicDepth === 0) for (const q of this.queues) q.atomicGroup = undefined;
      },
    };
  }

  private atomicDepth = 0;
  private atomicGroups = 0;

  /**
   * Writes `value` under `key` for RENAME: the copy is committed before the source's delete, even
   * across shards, so a crash in between leaves both rather than neither. Returns the ack of both.
   * Inside atomically() the delete does not wait for the copy: it belongs to its shard's group,
   * which must not wait on another shard's group (two crossing RENAMEs would wait on each other).
   */
  move(src: Buffer, dst: Buffer, value: HeldValue, expiresAt: number | null, now: number): Ack {
    this.refuseIfFull();
    if (this.atomicDepth > 0) {
      const copied = this.queueOf(dst).push(this.setWrite(null, dst, value, expiresAt, now), !this.opts.asyncWrite);
      const removed = this.queueOf(src).push({ kind: 'del', ns: null, key: src }, !this.opts.asyncWrite);
      return joinAcks([copied, removed]);
    }
    const copied = this.queueOf(dst).push(this.setWrite(null, dst, value, expiresAt, now), true)!;
    copied.catch(() => {}); // a failed copy is reported through the delete that waits for it
    // Even within one shard the delete waits: a failed copy must fail the delete too.
    const removed = this.queueOf(src).push({ kind: 'del', ns: null, key: src, after: copied }, !this.opts.asyncWrite);
    return this.opts.asyncWrite ? undefined : joinAcks([copied, removed]);
  }

  /**
   * Empties every shard (FLUSHDB / FLUSHALL): reads see nothing at once (the overlay's barrier),
   * and each shard's commit sets its rows aside in O(schema) (shard.ts flush()); the purger
   * deletes them afterwards in bounded steps. Counts are those of an empty shard from the commit.
   */
  flushAll(): Ack {
    const ack = joinAcks(this.queues.map((q) => q.push({ kind: 'flush' }, !this.opts.asyncWrite)));
    this.wakePurger();
    return ack;
  }

  // ---- purging flushed rows ------------------------------------------------------------------------

  private purger: NodeJS.Timeout | null = null;
  private purging = false;

  /**
   * Deletes the rows flushes set aside, then those DELs of namespaces took away: one bounded step (PURGE_ROWS rows, a few MiB of values)
   * per shard that has some, each in a turn of its own, queued like any write so it never overlaps the queue's commits or an
   * offloaded sweep, then a pause of PURGE_PAUSE_MS for the clients; an idle check (one read of
   * sqlite_master per shard) every PURGE_IDLE_MS otherwise. A replica's flushes, applied outside
   * the queues, are found by that check.
   */
  startPurger(): void {
    this.schedulePurge(0);
  }

  private schedulePurge(ms: number): void {
    if (this.closing !== null || this.purging) return;
    if (this.purger !== null) clearTimeout(this.purger);
    this.purger = setTimeout(() => void this.purgeTick(), ms);
    this.purger.unref();
  }

  /** A flush was just queued: look for work after its commit rather than at the next idle check. */
  private wakePurger(): void {
    if (this.purger !== null) this.schedulePurge(PURGE_PAUSE_MS);
  }

  private async purgeTick(): Promise<void> {
    this.purger = null;
    if (this.closing !== null) return;
    // A damaged shard is left alone: its errors are reported once already.
    const work = this.queues.filter((q) => q.shard.damage === null && orElse(() => q.shard.hasPurgeWork(), false));
    if (work.length === 0) {
      this.schedulePurge(PURGE_IDLE_MS);
      return;
    }
    this.purging = true;
    try {
      // One shard's step at a time: pushed together, the queues' commits would run back to back
      // in one turn (each queue flushes from its own setImmediate), holding clients for all four.
      for (const q of work) await q.push({ kind: 'purge', limit: PURGE_ROWS }, true)!.catch(() => {});
    } finally {
      this.purging = false;
    }
    this.schedulePurge(PURGE_PAUSE_MS);
  }

  // ---- read snapshots (snapshot.ts) ------------------------------------------------------------------

  /** Idle snapshot connections per shard, kept for the next long read. */
  private readonly idleSnapshots = new Map<number, SnapshotConnection[]>();
  /** Snapshot connections lent out and not yet given back. */
  private snapshotsOut = 0;

  /**
   * A snapshot of shard `id` begun now, on a read-only connection of its own, or null where no
   * second connection can open the file (locking_mode EXCLUSIVE). While any snapshot is out, the
   * chunks of dead blobs are not reclaimed: a snapshot row may still reference one. Give it back
   * with the returned end().
   */
  openSnapshot(id: number): { snap: SnapshotConnection; end: () => void } | null {
    if (this.opts.sqlite.locking_mode === 'EXCLUSIVE' || this.closing !== null) return null;
    const idle = this.idleSnapshots.get(id) ?? [];
    const snap = idle.pop() ?? new SnapshotConnection(this.queues[id].shard.path, this.opts.sqlite);
    try {
      snap.begin();
    } catch (err) {
      snap.close();
      throw this.queues[id].shard.fault(err);
    }
    this.snapshotsOut++;
    this.reclaimPaused++;
    let ended = false;
    return {
      snap,
      end: () => {
        if (ended) return;
        ended = true;
        this.snapshotsOut--;
        this.reclaimPaused--;
        try {
          snap.end();
          if (this.closing === null && idle.length < IDLE_SNAPSHOTS_PER_SHARD) {
            idle.push(snap);
            this.idleSnapshots.set(id, idle);
          } else snap.close();
        } catch (err) {
          orElse(() => snap.close(), undefined);
          this.queues[id].shard.fault(err);
        }
      },
    };
  }

  /** Whether rows set aside by a flush still wait to be deleted (tests, INFO). */
  hasPurgeWork(): boolean {
    return this.queues.some((q) => orElse(() => q.shard.hasPurgeWork(), false));
  }

  /**
   * Plain keys plus namespaces (a namespace counts once, like a Redis hash), from the counts the
   * shards keep: O(shards), whatever the data set. Like Redis, which counts a key until it is
   * reclaimed (lazily when touched, or by its active expiry cycle), the count includes rows that
   * have expired and still wait for the sweeper; to keep those few, DBSIZE first has the sweeper
   * reclaim what has expired by now (bounded steps, off the event loop with the maintenance
   * thread), then waits for every pending write to commit.
   */
  async dbsize(): Promise<number> {
    await this.reapExpired(Date.now());
    await this.drain();
    let keys = 0;
    for (const q of this.queues) keys += q.shard.counts().keys;
    return keys + this.namespaces.size;
  }

  /** Logical and stored bytes of every committed row, summed over the shards (maintained sums: no scan). */
  byteTotals(): ByteTotals {
    const total: ByteTotals = { rows: 0, logical: 0, stored: 0 };
    for (const q of this.queues) {
      // A shard that cannot be read is left out (it is reported damaged) so INFO still answers.
      const t = orElse(() => q.shard.byteTotals(), { rows: 0, logical: 0, stored: 0 });
      total.rows += t.rows;
      total.logical += t.logical;
      total.stored += t.stored;
    }
    return total;
  }

  /**
   * Sweeps what has expired by `now`, at most REAP_STEPS steps of REAP_LIMIT rows per shard: what
   * a mass expiry leaves beyond that is counted until the background sweeper gets to it.
   */
  private async reapExpired(now: number): Promise<void> {
    await Promise.all(
      this.queues.map(async (q) => {
        for (let step = 0; step < REAP_STEPS && q.shard.hasExpired(now); step++) {
          await this.sweepStep(q, now, REAP_LIMIT).catch(() => {});
          if (!q.shard.lastSweepFull) break;
        }
      }),
    );
  }

  /** Queues one sweep step on `q`'s shard (on the maintenance thread when there is one); settles after its commit. */
  private sweepStep(q: WriteQueue, now: number, limit: number): Promise<void> {
    const worker = this.maintenance;
    const offload = worker?.alive ? () => worker.sweep(q.shard.id, now, limit) : undefined;
    return q.push({ kind: 'sweep', now, limit, offload }, true)!;
  }

  /** Resolves once every write executed so far on the key's shard has committed or failed. */
  settle(key: Buffer): Promise<void> {
    return this.queueOf(key).drain();
  }

  /** Resolves once every write executed so far has committed or failed. */
  async drain(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.drain()));
  }

  // ---- a full disk (disk-reserve.ts) -------------------------------------------------------------

  private reserve: DiskReserve | null = null;
  private diskFullTimer: NodeJS.Timeout | null = null;
  /** True while the file system is full: writes that add data are refused (DiskFullError). */
  diskFull = false;

  private diskCheckedAt = 0;

  /** After commits (at most every DISK_WATCH_MS): stop adding data before SQLite runs out of room. */
  private watchDisk(): void {
    const reserve = this.reserve;
    if (reserve === null || this.diskFull) return;
    const now = performance.now();
    if (now - this.diskCheckedAt < DISK_WATCH_MS) return;
    this.diskCheckedAt = now;
    if (orElse(() => reserve.low(this.walBytes()), false)) this.diskFilled();
  }

  /** Bytes of the shards' WAL files: at most what checkpoints may still add to the shard files. */
  private walBytes(): number {
    return this.queues.reduce((n, q) => n + orElse(() => statSync(`${q.shard.path}-wal`).size, 0), 0);
  }

  /** Low space or an SQLITE_FULL: give the reserve back, refuse new data, watch for room. */
  private diskFilled(): void {
    if (this.reserve === null || this.diskFull || this.closing !== null) return;
    const reserve = this.reserve;
    this.diskFull = true;
    reserve.release();
    this.opts.onDiskFull?.(true, `the file system of ${this.opts.dataDir} is full: writes that add data are refused, the ${mib(reserve.bytes)} reserve is released for checkpoints and deletes`);
    // Not from inside the failed commit that reported it: on the next turn, and every second after.
    setImmediate(() => this.checkpointAll());
    this.diskFullTimer = setInterval(() => this.tryResume(), DISK_FULL_RETRY_MS);
    this.diskFullTimer.unref();
  }

  private tryResume(): void {
    const reserve = this.reserve;
    if (reserve === null || this.closing !== null) return;
    this.checkpointAll();
    if (!reserve.roomToResume(this.walBytes()) || !reserve.take()) return;
    this.diskFull = false;
    if (this.diskFullTimer !== null) clearInterval(this.diskFullTimer);
    this.diskFullTimer = null;
    this.opts.onDiskFull?.(false, `the file system of ${this.opts.dataDir} has room again: the reserve is taken back and writes resume`);
  }

  private checkpointAll(): void {
    for (const q of this.queues) if (q.shard.isOpen) orElse(() => q.shard.checkpoint(), false);
  }

  /** Throws DiskFullError while the disk is full (deletes are still let through). */
  private refuseIfFull(): void {
    if (!this.diskFull) return;
    const need = this.reserve === null ? '' : ` until ${mib(RESUME_FACTOR * this.reserve.bytes + this.walBytes())} are free`;
    throw new DiskFullError(`disk full: writes that add data are refused${need} in ${this.opts.dataDir} (deletes still work)`);
  }

  /** Drains every queue, checkpoints the WAL into each file and closes them. */
  close(): Promise<void> {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
    if (this.diskFullTimer !== null) clearInterval(this.diskFullTimer);
    if (this.reclaimer !== null) clearTimeout(this.reclaimer);
    this.reclaimer = null;
    if (this.purger !== null) clearTimeout(this.purger);
    this.purger = null;
    this.closing ??= (async () => {
      // drain() waits for the writes made before it; repeat for any made while it waited.
      do await this.drain();
      while (this.queues.some((q) => q.depth > 0));
      await this.maintenance?.close();
      for (const idle of this.idleSnapshots.values()) for (const snap of idle) orElse(() => snap.close(), undefined);
      this.idleSnapshots.clear();
      // The last checkpoint gets the reserve's room (taken again at the next start).
      this.reserve?.releaseAll();
      for (const q of this.queues) {
        // A checkpoint that fails (a full disk, a damaged file) leaves the WAL for the next start,
        // which replays it: nothing committed is lost, and shutdown goes on (the error is reported).
        orElse(() => q.shard.checkpoint(), false);
        orElse(() => q.shard.close(), undefined);
      }
      for (const c of this.chunkFiles) {
        c.checkpoint();
        c.close();
      }
      await this.chunkIO?.stop();
      this.valueBuffers.close();
    })();
    return this.closing;
  }

  /** The write queue (and with it the shard and overlay) that owns `key`. */
  queueOf(key: Buffer): WriteQueue {
    return this.queues[this.ring.shardOf(key)];
  }

  /** Hits, misses and size of the caches of large values, summed over shards. */
  readCacheStats(): ReadCacheStats {
    return this.sumCaches((q) => q.cache.stats());
  }

  /** Hits, misses and size of the caches of small values, summed over shards. */
  valueCacheStats(): ReadCacheStats {
    return this.sumCaches((q) => q.cache.smallStats());
  }

  private sumCaches(of: (q: WriteQueue) => ReadCacheStats): ReadCacheStats {
    const total: ReadCacheStats = { hits: 0, misses: 0, bytes: 0, entries: 0 };
    for (const q of this.queues) {
      const s = of(q);
      total.hits += s.hits;
      total.misses += s.misses;
      total.bytes += s.bytes;
      total.entries += s.entries;
    }
    return total;
  }

  /**
   * Starts the background sweep of expired rows: every `intervalMs`, each shard deletes up to
   * `limit` of them through its write queue (in order with the writes around it), and goes again
   * after a short pause while a step comes back full.
   */
  startSweeper(intervalMs = 100, limit = 25): void {
    if (this.sweeper !== null) return;
    const tick = (): void => {
      const now = Date.now();
      const worker = this.maintenance;
      // A step holds up its shard's commits until the thread runs it: never queue one behind a
      // checkpoint (which can take tens of ms after large writes). Try again shortly instead.
      if (worker?.alive && worker.checkpointsInFlight > 0) {
        if (this.sweeper !== null) setTimeout(tick, SWEEP_PAUSE_MS).unref();
        return;
      }
      for (const q of this.queues) {
        // An idle shard costs one indexed lookup, not a transaction.
        // A shard that cannot answer (reported by the shard) is skipped this tick.
        if (this.sweeping.has(q) || this.swapping.has(q.shard.id) || !orElse(() => q.shard.hasExpired(now), false)) continue;
        this.sweeping.add(q);
        void this.sweepStep(q, now, limit)
          .catch(() => {})
          .then(() => {
            this.sweeping.delete(q);
            // More are waiting: go again soon, but leave the event loop to clients in between,
            // so a mass expiry is a stream of short steps rather than one long stall.
            if (q.shard.lastSweepFull && this.sweeper !== null) setTimeout(tick, SWEEP_PAUSE_MS).unref();
          });
      }
    };
    this.sweeper = setInterval(tick, intervalMs);
    this.sweeper.unref();
  }

  private sweeper: NodeJS.Timeout | null = null;
  private readonly sweeping = new Set<WriteQueue>();

  /** Expired rows the sweeper has deleted since start. */
  get sweptRows(): number {
    return this.queues.reduce((n, q) => n + q.shard.sweptRows, 0);
  }

  /** Keys with an expiry, over all shards (INFO keyspace); committed rows, from the maintained counts. */
  countExpiring(_now?: number): number {
    return this.queues.reduce((n, q) => n + orElse(() => q.shard.counts().expires, 0), 0);
  }

  // ---- the write path (keyspace.ts decides what to write) ---------------------------------------

  /** Queues a value; reads see it at once. */
  write(ns: Buffer | null, key: Buffer, value: HeldValue, expiresAt: number | null, now: number): Ack {
    this.refuseIfFull();
    // Placement hashes the key 21 times over: once per write is enough.
    const shard = this.ring.shardOf(key);
    return this.queues[shard].push(this.setWrite(ns, key, value, expiresAt, now, shard), !this.opts.asyncWrite);
  }

  /** Queues a new expiry for an existing key; the value stays as it is (pending or committed). */
  expire(ns: Buffer | null, key: Buffer, expiresAt: number | null, now: number): Ack {
    this.refuseIfFull();
    return this.queueOf(key).push({ kind: 'expire', ns, key, expiresAt, now }, !this.opts.asyncWrite);
  }

  remove(ns: Buffer | null, key: Buffer): Ack {
    return this.queueOf(key).push({ kind: 'del', ns, key }, !this.opts.asyncWrite);
  }

  /**
   * Deletes every field of a namespace, on every shard: a large one in O(1) under a tombstone
   * (shard.ts dropNamespace()), its rows deleted afterwards by the purger in bounded steps.
   */
  removeNamespace(ns: Buffer): Ack {
    const ack = joinAcks(this.queues.map((q) => q.push({ kind: 'delns', ns }, !this.opts.asyncWrite)));
    this.wakePurger();
    return ack;
  }

  private setWrite(ns: Buffer | null, key: Buffer, value: HeldValue, expiresAt: number | null, now: number, shard = this.ring.shardOf(key)): PendingWrite {
    const compression = this.opts.compression;
    let encoded: PendingWrite & { kind: 'set' } extends { encoded: infer E } ? E : never;
    if (value instanceof BlobRef) {
      // A blob of this shard is referenced as it is (RENAME and COPY move or share the row only);
      // one of another shard is copied chunk by chunk first.
      encoded = value.shard === shard ? { codec: CHUNKED_CODEC, payload: EMPTY, size: value.size, blob: value } : this.copyBlob(value, shard);
    } else if (value instanceof Promise) {
      // Whoever reads the overlay sees the promise; a rejection nobody reads must not crash.
      value.catch(() => {});
      encoded = value.then(async (v): Promise<SizedEncoded> =>
        v.length > CHUNK_THRESHOLD ? this.stage(shard, v) : { ...(await encode(v, compression)), size: v.length },
      );
    } else if (value.length > CHUNK_THRESHOLD) {
      encoded = this.stage(shard, value);
    } else {
      encoded = encode(value, compression);
    }
    return { kind: 'set', ns, key, value, encoded, now, expiresAt };
  }

  // ---- chunked values (chunks.ts) ---------------------------------------------------------------

  /**
   * Writes `value` into shard `shard`'s chunk file as a new blob, a few chunks per transaction with
   * the event loop free in between (each chunk compressed on its own, off the loop when large).
   * The key's row is written afterwards by the write queue: until then the blob is referenced by
   * nothing, and a crash leaves it for the start-up check to reclaim.
   */
  private async stage(shard: number, value: Buffer): Promise<SizedEncoded> {
    const file = this.chunkFiles[shard];
    const id = file.allocate();
    try {
      const offLoop = file.offLoop;
      if (!offLoop) file.open(id, value.length);
      let stored = 0;
      const n = chunkCount(value.length);
      for (let seq = 0; seq < n; seq += CHUNKS_PER_STEP) {
        const batch: { encoded: Encoded; size: number }[] = [];
        for (let s = seq; s < Math.min(n, seq + CHUNKS_PER_STEP); s++) {
          const raw = value.subarray(s * CHUNK_BYTES, Math.min(value.length, (s + 1) * CHUNK_BYTES));
          batch.push({ encoded: await encodeChunk(raw, this.opts.compression), size: raw.length });
        }
        // Off the loop with the chunk I/O thread; its first transaction records the blob too.
        stored += offLoop ? await file.putChunksAsync(id, seq, batch, seq === 0 ? value.length : undefined) : file.putChunks(id, seq, batch);
        if (!offLoop) await nextTurn();
      }
      return { codec: CHUNKED_CODEC, payload: EMPTY, size: value.length, blob: new BlobRef(shard, id, value.length, stored) };
    } catch (err) {
      this.suspects[shard].add(id);
      throw err;
    }
  }

  // ---- staged values (blob-stager.ts) -----------------------------------------------------------

  /**
   * A new blob for a value that arrives while it is written (a streamed SET), in the chunk file of
   * the shard `key` belongs to. Its index row is committed first: a crash from here on leaves a
   * blob the start-up orphan check finds. Pinned until taken or dropped.
   */
  openStaged(key: Buffer, size: number): { shard: number; file: ChunkFile; id: number; indexed: boolean } {
    this.refuseIfFull();
    const shard = this.ring.shardOf(key);
    const file = this.chunkFiles[shard];
    const id = file.allocate();
    // With the chunk I/O thread, the index row goes in with the first chunks (its transaction, off the loop).
    const indexed = !file.offLoop;
    if (indexed) file.open(id, size);
    file.pin(id);
    return { shard, file, id, indexed };
  }

  /** A staged blob no row will reference: unpinned and reclaimed in the background. */
  dropStaged(shard: number, id: number): void {
    this.chunkFiles[shard].unpin(id);
    this.suspects[shard].add(id);
  }

  stagingError(shard: number, err: unknown): Error {
    const code = (err as { code?: unknown } | null)?.code;
    const sqlite = typeof code === 'string' ? code : undefined;
    if (sqlite?.startsWith('SQLITE_FULL') === true) this.diskFilled();
    const message = err instanceof Error ? err.message : String(err);
    return new Error(`${basename(this.chunkFiles[shard].path)}: ${message}${sqlite === undefined ? '' : ` (${sqlite})`}`);
  }

  /** The compression new chunks are written with. */
  get compression(): CompressionSettings | null {
    return this.opts.compression;
  }

  /**
   * Copies blob `ref` into shard `shard`'s chunk file (a cross-shard RENAME or COPY): stored chunks
   * as they are (no decode, no recompression), a few per transaction. The source stays pinned until
   * the write that references the copy has committed.
   */
  private copyBlob(ref: BlobRef, shard: number): Promise<SizedEncoded> {
    const from = this.chunkFiles[ref.shard];
    const to = this.chunkFiles[shard];
    from.pin(ref.id);
    const copy = async (): Promise<SizedEncoded> => {
      const id = to.allocate();
      try {
        // Off the loop with the chunk I/O thread (its first transaction records the blob too).
        const offLoop = to.offLoop;
        if (!offLoop) to.open(id, ref.size);
        const n = chunkCount(ref.size);
        for (let seq = 0; seq < n; seq += CHUNKS_PER_STEP) {
          const batch: { encoded: Encoded; size: number }[] = [];
          for (let s = seq; s < Math.min(n, seq + CHUNKS_PER_STEP); s++) {
            const c = await from.readStoredAsync(ref.id, s);
            batch.push({ encoded: { codec: c.codec, payload: c.data }, size: c.size });
          }
          if (offLoop) await to.putChunksAsync(id, seq, batch, seq === 0 ? ref.size : undefined);
          else {
            to.putChunks(id, seq, batch);
            await nextTurn();
          }
        }
      } catch (err) {
        this.suspects[shard].add(id);
        from.unpin(ref.id);
        throw err;
      }
      return { codec: CHUNKED_CODEC, payload: EMPTY, size: ref.size, blob: new BlobRef(shard, id, ref.size, ref.stored), settled: () => from.unpin(ref.id) };
    };
    return copy();
  }

  /** Blob `id` of shard `shard` may be referenced by nothing (a replicated write that failed): reclaim it once the shard file confirms. */
  blobMayBeUnreferenced(shard: number, id: number): void {
    this.suspects[shard].add(id);
  }

  /**
   * Holds the reclamation of dead blobs back until the returned function is called: a copy of a
   * shard file taken meanwhile, followed by a copy of its chunk file, finds every blob it
   * references in the chunk copy (replication's full copy; backup() does the same).
   */
  holdReclamation(): () => void {
    this.reclaimPaused++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.reclaimPaused--;
    };
  }

  /**
   * Replaces shard `i`'s files with `shardFile` and `chunkFile` (a replica's full copy, already on
   * this file system): the shard and its chunk file are closed, the files renamed into place and
   * opened again. The event loop is held only for the close, two renames and the open (the open
   * reads the namespace names and blob ids: O(namespaces + blobs), not O(bytes)); readers see the
   * old rows or the new. A reader streaming a chunked value of the old files is ended (its
   * connection closes, as for a chunk that cannot be read), never given bytes of the new ones.
   */
  async replaceShardFiles(i: number, shardFile: string, chunkFile: string): Promise<void> {
    const q = this.queues[i];
    checkCopy(shardFile, q.shard.path);
    this.swapping.add(i);
    const release = this.holdReclamation();
    const worker = this.maintenance;
    const files = [i, this.queues.length + i];
    try {
      do await q.drain();
      while (q.depth > 0);
      // The maintenance thread's connections to the old files must be closed before the rename:
      // SQLite deletes a WAL by its name when its last connection closes.
      if (worker !== null) await worker.release(files);
      while (q.depth > 0) await q.drain();
      const old = q.shard;
      const oldChunks = this.chunkFiles[i];
      old.detachTally();
      old.close();
      oldChunks.close();
      // The old files are moved aside and deleted off the event loop: unlinking a file of many MiB
      // takes the file system tens of ms.
      const trash = join(this.opts.dataDir, REPLACED_DIR);
      mkdirSync(trash, { recursive: true, mode: 0o700 });
      const tag = `${Date.now()}-${i}`;
      const aside: string[] = [];
      for (const f of shardFiles(old.path)) {
        const to = join(trash, `${basename(f)}.${tag}`);
        try {
          renameSync(f, to);
          aside.push(to);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
      renameSync(chunkFile, oldChunks.path);
      renameSync(shardFile, old.path);
      for (const f of aside) void rm(f, { force: true }).catch(() => {});
      const { shard, chunks, suspects } = this.openShardFiles(i);
      q.shard = shard;
      this.chunkFiles[i] = chunks;
      this.suspects[i] = suspects;
      this.forgetting[i] = new Set();
      q.cache.clear();
      if (worker !== null) {
        shard.setAutoCheckpoint(SAFETY_NET_CHECKPOINT_PAGES);
        chunks.setAutoCheckpoint(CHUNK_SAFETY_NET_CHECKPOINT_PAGES);
        chunks.onCommit = () => worker.markDirty(this.queues.length + i);
      }
    } finally {
      worker?.unhold(files);
      release();
      this.swapping.delete(i);
    }
  }

  /** Shards whose files replaceShardFiles() is swapping: the sweeper leaves them alone meanwhile. */
  private readonly swapping = new Set<number>();

  /**
   * Reclaims the chunks of dead blobs in the background: one step (RECLAIM_CHUNKS chunks of one
   * blob) per shard per turn, a short pause between turns while there is work, and a slower tick
   * when there is none. A blob a reader holds (pinned) waits.
   */
  startReclaimer(): void {
    const tick = (): void => {
      this.reclaimer = null;
      let busy = false;
      if (this.reclaimPaused === 0) {
        for (let i = 0; i < this.queues.length; i++) {
          // A damaged shard's dead blobs wait for a repair: its errors are reported once already.
          if (this.queues[i].shard.damage !== null) continue;
          try {
            busy = this.reclaimStep(i) || busy;
          } catch (err) {
            this.opts.onMaintenanceProblem?.(`reclaiming chunks: ${(err as Error).message}`, i);
          }
        }
      }
      if (this.closing !== null) return;
      this.reclaimer = setTimeout(tick, busy ? RECLAIM_PAUSE_MS : RECLAIM_IDLE_MS);
      this.reclaimer.unref();
    };
    this.reclaimer = setTimeout(tick, RECLAIM_IDLE_MS);
    this.reclaimer.unref();
  }

  private reclaimer: NodeJS.Timeout | null = null;
  /** Dead blobs whose chunks are gone and whose 'reclaimed' write is queued, per shard. */
  private readonly forgetting: Set<number>[] = [];

  /** One bounded step on shard `i`; true when there is more to do. */
  private reclaimStep(i: number): boolean {
    const file = this.chunkFiles[i];
    const shard = this.queues[i].shard;
    const suspects = this.suspects[i];
    for (const id of suspects) {
      if (file.pinned(id)) continue;
      if (shard.knowsBlob(id)) {
        suspects.delete(id); // referenced after all (or dead: the dead list takes it from here)
        continue;
      }
      if (file.reclaimStep(id, RECLAIM_CHUNKS)) suspects.delete(id);
      return true;
    }
    const forgetting = (this.forgetting[i] ??= new Set());
    for (const id of shard.deadBlobs(RECLAIM_CANDIDATES)) {
      if (file.pinned(id) || forgetting.has(id)) continue;
      if (!file.reclaimStep(id, RECLAIM_CHUNKS)) return true;
      forgetting.add(id);
      void this.queues[i].push({ kind: 'reclaimed', ids: [id] }, true)!.finally(() => forgetting.delete(id)).catch(() => {});
      return true;
    }
    return false;
  }

  /** Blobs and chunks in each shard's chunk file, and dead blobs waiting (tests, INFO). */
  chunkStats(): { blobs: number; chunks: number; dead: number }[] {
    return this.queues.map((q, i) => ({ ...this.chunkFiles[i].counts(), dead: q.shard.deadBlobs(1_000_000).length }));
  }

  /** Resolves once no blob waits for reclamation (tests; bounded by `timeoutMs`). */
  async reclaimAll(timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    await this.drain();
    while (Date.now() < until) {
      let busy = false;
      for (let i = 0; i < this.queues.length; i++) busy = this.reclaimStep(i) || busy;
      await this.drain();
      if (!busy) return;
      await nextTurn();
    }
    throw new Error('reclamation did not finish in time');
  }

  // ---- operations (observability/, tools/) ------------------------------------------------------

  /** Told of the committed writes of every commit, in order (replication/primary.ts). */
  replicationHook: ((shard: number, writes: readonly ShardWrite[]) => void) | null = null;

  /** Told of every commit attempt (shard, writes, milliseconds, ok); set by the metrics. */
  commitObserver: ((shard: number, ops: number, millis: number, ok: boolean) => void) | null = null;

  get dataDir(): string {
    return this.opts.dataDir;
  }

  /**
   * Online backup of every shard into `dir` (which must exist), one shard after another, each a
   * consistent snapshot (SQLite's backup API on the shard's own connection: writes committed while
   * it runs are carried into the copy). Returns the files written, in shard order.
   */
  async backup(dir: string, onShard?: (shard: number) => void): Promise<string[]> {
    const files: string[] = [];
    // The chunk file is copied after its shard file, with reclamation held back meanwhile: every
    // blob a row of the shard copy references is then in the chunk copy (blobs staged after the
    // shard copy are referenced by nothing there, and reclaimed when the copy is opened).
    this.reclaimPaused++;
    try {
      for (const q of this.queues) {
        const file = join(dir, shardFileName(q.shard.id));
        await q.shard.backup(file);
        files.push(file);
        const chunks = join(dir, chunkFileName(q.shard.id));
        await this.chunkFiles[q.shard.id].backup(chunks);
        files.push(chunks);
        onShard?.(q.shard.id);
      }
    } finally {
      this.reclaimPaused--;
    }
    return files;
  }

  /** Page counts of each shard file, in shard order. */
  pageStats(): PageStats[] {
    return this.queues.map((q) => orElse(() => q.shard.pageStats(), { pageSize: 0, pageCount: 0, freelistCount: 0, autoVacuum: 0 }));
  }

  /** Health of each shard: a read of each table and taking (then releasing) the write lock. */
  probe(): ({ shard: number; damaged: boolean } & ReturnType<Shard['probe']>)[] {
    return this.queues.map((q) => {
      const probed = q.shard.probe();
      return { shard: q.shard.id, ...probed, damaged: q.shard.damage !== null };
    });
  }

  /** Frees up to `pages` free pages of one shard; the pages freed. */
  vacuumShard(id: number, pages: number): number {
    const freed = this.queues[id].shard.incrementalVacuum(pages) + this.chunkFiles[id].incrementalVacuum(pages);
    // The file shrinks when the WAL holding the vacuum is checkpointed: ask for one.
    if (freed > 0) this.maintenance?.markDirty(id);
    return freed;
  }

  /** Frees up to `pages` free pages of each shard (auto_vacuum = INCREMENTAL); pages freed in total. */
  incrementalVacuum(pages: number): number {
    let freed = 0;
    for (const q of this.queues) freed += q.shard.incrementalVacuum(pages) + this.chunkFiles[q.shard.id].incrementalVacuum(pages);
    return freed;
  }
}

/**
 * `f()`, or `fallback` when it throws: for the store's own background and reporting paths, where
 * the shard has already reported the error (Shard.fault) and a throw would reach nobody.
 */
function orElse<T>(f: () => T, fallback: T): T {
  try {
    return f();
  } catch {
    return fallback;
  }
}

const EMPTY = Buffer.alloc(0);
/** Where replaceShardFiles() moves the files it replaces until they are deleted (emptied at open). */
const REPLACED_DIR = 'replaced.tmp';
/** Chunks one reclamation step deletes (a 256 KiB chunk frees four 64 KiB pages: ~0.1 ms each). */
const RECLAIM_CHUNKS = 16;
/** Dead blobs looked at per step. */
const RECLAIM_CANDIDATES = 8;
const RECLAIM_PAUSE_MS = 1;
/** Rows one purge step deletes at most: 2000 small rows took 3–24 ms here, 500 keep a step near the budget. */
const PURGE_ROWS = 500;
const PURGE_PAUSE_MS = 2;
const PURGE_IDLE_MS = 100;
/** Snapshot connections kept open per shard between long reads. */
const IDLE_SNAPSHOTS_PER_SHARD = 2;
const RECLAIM_IDLE_MS = 100;

/**
 * Refuses a shard copy this shard could not open as it is: not an SQLite file, or a schema newer
 * than this version's (an older one is brought up to date when opened, as at start).
 */
function checkCopy(file: string, shardPath: string): void {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new Error(`the copy for ${shardPath} cannot be opened: ${(err as Error).message}`);
  }
  try {
    const theirs = Number(db.pragma('user_version', { simple: true }));
    if (theirs > SCHEMA_VERSION) throw new Error(`the copy for ${shardPath} has schema version ${theirs}; this version reads up to ${SCHEMA_VERSION}`);
  } finally {
    db.close();
  }
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** One Ack for many: undefined when none of them waits. */
export function joinAcks(acks: Ack[]): Ack {
  const waiting = acks.filter((a): a is Promise<void> => a !== undefined);
  if (waiting.length === 0) return undefined;
  if (waiting.length === 1) return waiting[0];
  return Promise.all(waiting).then(() => undefined);
}

export function decodeRow(row: StoredValue, ns: Buffer | null, key: Buffer): Buffer | Promise<Buffer> {
  const fail = (err: unknown): never => {
    const what = ns === null ? `key '${printable(key)}'` : `field '${printable(key)}' of '${printable(ns)}'`;
    const why = err instanceof CodecError || err instanceof Error ? err.message : String(err);
    throw new CorruptValueError(`stored value of ${what} cannot be decoded: ${why}`);
  };
  if (row.codec === 0) return row.data;
  try {
    const out = decode(row.codec, row.data);
    return out instanceof Promise ? out.catch(fail) : out;
  } catch (err) {
    return fail(err);
  }
}

/** decodeRow on the calling thread (for scripts): never a promise. */
export function decodeRowSync(row: StoredValue, ns: Buffer | null, key: Buffer): Buffer {
  try {
    return decodeSync(row.codec, row.data);
  } catch (err) {
    const what = ns === null ? `key '${printable(key)}'` : `field '${printable(key)}' of '${printable(ns)}'`;
    const why = err instanceof Error ? err.message : String(err);
    throw new CorruptValueError(`stored value of ${what} cannot be decoded: ${why}`);
  }
}
