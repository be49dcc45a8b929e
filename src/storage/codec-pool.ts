// A few worker threads for zstd work on large values (zstd-napi has no async API). Workers start
// on first use and are unref'd while idle, so an idle pool never keeps the process alive.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { share } from './codec-copy.js';

export type ZstdTask = { op: 'compress'; level: number } | { op: 'decompress'; size: number };
export type JobRequest = ZstdTask & { input: Uint8Array };
export type JobReply = { output: Uint8Array | null } | { error: string };

/** The pool failed the job (worker died, shutdown, input not sendable), not the codec. */
export class PoolError extends Error {
  override name = 'PoolError';
}

interface Job {
  task: ZstdTask;
  input: Uint8Array;
  resolve: (out: Buffer | null) => void;
  reject: (err: Error) => void;
}

// At least two, so one multi-second high-level compression cannot stall every other job.
const POOL_SIZE = Math.min(4, Math.max(2, availableParallelism()));
const workers = new Set<Worker>();
const idle: Worker[] = [];
const running = new Map<Worker, Job>(); // one job per worker at a time
// Reads wait on decompression, so it goes ahead of queued compressions.
const decompressQueue: Job[] = [];
const compressQueue: Job[] = [];

/**
 * Runs one zstd job off the event loop. The input is copied for the worker (see share()) rather
 * than transferred: transferring would detach the caller's buffer, which it still uses.
 */
export function runZstd(task: ZstdTask & { op: 'decompress' }, input: Uint8Array): Promise<Buffer>;
export function runZstd(task: ZstdTask, input: Uint8Array): Promise<Buffer | null>;
export function runZstd(task: ZstdTask, input: Uint8Array): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    (task.op === 'decompress' ? decompressQueue : compressQueue).push({ task, input, resolve, reject });
    pump();
  });
}

function pump(): void {
  for (;;) {
    const queue = decompressQueue.length > 0 ? decompressQueue : compressQueue;
    if (queue.length === 0) return;
    const worker = idle.pop() ?? (workers.size < POOL_SIZE ? spawn() : undefined);
    if (worker === undefined) return;
    const job = queue.shift() as Job;
    running.set(worker, job);
    worker.ref();
    void send(worker, job);
  }
}

async function send(worker: Worker, job: Job): Promise<void> {
  try {
    // Copied only once a worker is free, so a queue of huge values is not held twice over.
    const input = await share(job.input);
    if (running.get(worker) !== job) return; // shut down meanwhile
    const req: JobRequest = { ...job.task, input };
    worker.postMessage(req);
  } catch (err) {
    // Out of memory for the copy, typically; the worker itself is fine.
    if (running.get(worker) !== job) return;
    release(worker);
    job.reject(new PoolError(`cannot pass value to codec worker: ${err instanceof Error ? err.message : String(err)}`));
    pump();
  }
}

function release(worker: Worker): void {
  running.delete(worker);
  worker.unref();
  idle.push(worker);
}

function spawn(): Worker {
  const worker = new Worker(new URL('./codec-worker.js', import.meta.url));
  workers.add(worker);
  worker.on('message', (reply: JobReply) => {
    const job = running.get(worker);
    release(worker);
    if (job !== undefined) {
      if ('error' in reply) job.reject(new Error(reply.error));
      else job.resolve(reply.output === null ? null : Buffer.from(reply.output.buffer, reply.output.byteOffset, reply.output.byteLength));
    }
    pump();
  });
  const lost = (cause: Error): void => {
    if (!workers.delete(worker)) return; // already handled ('error' is followed by 'exit') or shut down
    const i = idle.indexOf(worker);
    if (i >= 0) idle.splice(i, 1);
    running.get(worker)?.reject(new PoolError(`codec worker died: ${cause.message}`, { cause }));
    running.delete(worker);
    pump(); // spawns a replacement if work is queued
  };
  worker.on('error', lost);
  worker.on('exit', (code) => lost(new Error(`exit code ${code}`)));
  return worker;
}

export async function shutdownPool(): Promise<void> {
  const all = [...workers];
  const stopped = new PoolError('codec worker pool shut down');
  for (const job of [...running.values(), ...decompressQueue, ...compressQueue]) job.reject(stopped);
  workers.clear();
  running.clear();
  idle.length = 0;
  decompressQueue.length = 0;
  compressQueue.length = 0;
  await Promise.all(all.map((w) => w.terminate()));
}
