/**
 * The server side of the maintenance thread (maintenance-worker.ts), which takes WAL checkpoints and
 * expiry sweep steps off the event loop.
 *
 * Checkpoints: shards that committed since their last checkpoint are checkpointed every `intervalMs`,
 * at most one request per shard in flight. The shards' own automatic checkpoint stays on with a high
 * threshold as a safety net: it fires only if the worker falls far behind, and it lets a WAL under
 * constant writes restart from the beginning.
 * Sweeps: the write queue asks for a step when the sweep reaches the head of the queue, and commits
 * nothing on that shard until the step is done.
 */
import { Worker } from 'node:worker_threads';
import type { SweepResult } from './sweep.js';

export type MaintenanceRequest =
  | { op: 'checkpoint'; shard: number; path: string }
  | { op: 'sweep'; id: number; shard: number; path: string; now: number; limit: number }
  /** Checkpoints these files (TRUNCATE) and closes the thread's connections to them: they are about to be replaced. */
  | { op: 'release'; id: number; paths: string[] };

export type MaintenanceReply =
  | { op: 'checkpoint'; shard: number; ok: true; millis: number; walFrames: number }
  | { op: 'checkpoint'; shard: number; ok: false; error: string }
  | { op: 'sweep'; id: number; shard: number; ok: true; millis: number; result: SweepResult }
  | { op: 'sweep'; id: number; shard: number; ok: false; error: string }
  | { op: 'release'; id: number };

export interface MaintenanceWorkerData {
  synchronous: 'OFF' | 'NORMAL' | 'FULL';
}

export interface MaintenanceEvents {
  onCheckpointError: (shard: number, message: string) => void;
  /** The worker is gone: the shards must checkpoint and sweep on the event loop again. */
  onWorkerLost: (message: string) => void;
}

export class MaintenanceWorker {
  private readonly worker: Worker;
  private readonly dirty = new Set<number>();
  private readonly checkpointing = new Set<number>();
  private readonly sweeps = new Map<number, { resolve: (r: SweepResult) => void; reject: (e: Error) => void }>();
  private nextSweepId = 0;
  /** Files (shard indexes) being replaced: no checkpoint is requested for them until unhold(). */
  private readonly held = new Set<number>();
  private readonly releases = new Map<number, () => void>();
  private readonly timer: NodeJS.Timeout;
  private closed: Promise<void> | null = null;
  private lostReason: string | null = null;
  checkpoints = 0;
  checkpointFailures = 0;
  checkpointMillis = 0;

  constructor(
    private readonly paths: readonly string[],
    intervalMs: number,
    private readonly events: MaintenanceEvents,
    /** The shards' `synchronous` setting: the worker's sweep commits promise what the server's do. */
    synchronous: MaintenanceWorkerData['synchronous'] = 'NORMAL',
  ) {
    const workerData: MaintenanceWorkerData = { synchronous };
    this.worker = new Worker(new URL('./maintenance-worker.js', import.meta.url), { workerData });
    this.worker.unref();
    this.worker.on('message', (reply: MaintenanceReply) => this.finished(reply));
    this.worker.on('error', (err) => this.lost(err.message));
    this.worker.on('exit', (code) => this.lost(`maintenance worker exited with code ${code}`));
    this.timer = setInterval(() => this.requestCheckpoints(), intervalMs);
    this.timer.unref();
  }

  /** False once the worker is gone or closing: callers fall back to doing the work themselves. */
  get alive(): boolean {
    return this.lostReason === null && this.closed === null;
  }

  /** Checkpoints the thread is running or has queued. */
  get checkpointsInFlight(): number {
    return this.checkpointing.size;
  }

  /** Called after each commit on `shard`. */
  markDirty(shard: number): void {
    this.dirty.add(shard);
  }

  /** Runs one sweep step on `shard`'s file in the worker. */
  sweep(shard: number, now: number, limit: number): Promise<SweepResult> {
    if (!this.alive) return Promise.reject(new Error(this.lostReason ?? 'maintenance worker closed'));
    const id = ++this.nextSweepId;
    return new Promise((resolve, reject) => {
      this.sweeps.set(id, { resolve, reject });
      this.post({ op: 'sweep', id, shard, path: this.paths[shard], now, limit });
    });
  }

  /**
   * Checkpoints files `shards` completely and closes the thread's connections to them, once their
   * running checkpoints finish, and
   * requests none for them until unhold(): they can then be replaced on disk. A sweep is never
   * running on them (the caller has drained their write queue and keeps new sweeps off).
   */
  async release(shards: readonly number[]): Promise<void> {
    for (const s of shards) this.held.add(s);
    while (this.alive && shards.some((s) => this.checkpointing.has(s))) await new Promise((r) => setTimeout(r, 2));
    if (!this.alive) return;
    const id = ++this.nextSweepId;
    await new Promise<void>((resolve) => {
      this.releases.set(id, resolve);
      this.post({ op: 'release', id, paths: shards.map((s) => this.paths[s]) });
    });
  }

  unhold(shards: readonly number[]): void {
    for (const s of shards) this.held.delete(s);
  }

  /** Stops the worker once its running jobs finish; the store then closes the shards. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      clearInterval(this.timer);
      while (this.lostReason === null && (this.checkpointing.size > 0 || this.sweeps.size > 0)) {
        await new Promise((r) => setTimeout(r, 2));
      }
      if (this.lostReason !== null) return;
      const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
      // Its exit is awaited here, so it must keep the process alive until then.
      this.worker.ref();
      this.lostReason = 'maintenance worker closed';
      this.worker.postMessage('close');
      await exited;
    })();
    return this.closed;
  }

  private requestCheckpoints(): void {
    if (!this.alive) return;
    for (const shard of this.dirty) {
      if (this.checkpointing.has(shard) || this.held.has(shard)) continue;
      this.dirty.delete(shard);
      this.checkpointing.add(shard);
      this.post({ op: 'checkpoint', shard, path: this.paths[shard] });
    }
  }

  private post(req: MaintenanceRequest): void {
    this.worker.postMessage(req);
    this.worker.ref();
  }

  /** Referenced only while a job is out: an idle worker must not keep the process alive. */
  private unrefIfIdle(): void {
    if (this.sweeps.size === 0 && this.checkpointing.size === 0 && this.releases.size === 0 && this.alive) this.worker.unref();
  }

  private lost(message: string): void {
    if (this.lostReason !== null) return;
    this.lostReason = message;
    clearInterval(this.timer);
    this.checkpointing.clear();
    for (const s of this.sweeps.values()) s.reject(new Error(message));
    this.sweeps.clear();
    // A lost thread holds no connection any more.
    for (const r of this.releases.values()) r();
    this.releases.clear();
    this.events.onWorkerLost(message);
  }

  private finished(reply: MaintenanceReply): void {
    if (reply.op === 'release') {
      this.releases.get(reply.id)?.();
      this.releases.delete(reply.id);
      this.unrefIfIdle();
      return;
    }
    if (reply.op === 'sweep') {
      const waiter = this.sweeps.get(reply.id);
      this.sweeps.delete(reply.id);
      if (reply.ok) waiter?.resolve(reply.result);
      else waiter?.reject(new Error(reply.error));
      this.unrefIfIdle();
      return;
    }
    this.checkpointing.delete(reply.shard);
    this.unrefIfIdle();
    if (reply.ok) {
      this.checkpoints++;
      this.checkpointMillis += reply.millis;
    } else {
      this.checkpointFailures++;
      // SQLITE_BUSY means another checkpoint held the lock: try again on the next tick.
      if (/busy|locked/i.test(reply.error)) this.dirty.add(reply.shard);
      else this.events.onCheckpointError(reply.shard, reply.error);
    }
  }
}
