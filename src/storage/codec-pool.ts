// A few worker threads for zstd work on large values. Workers start on first use and are
// unref'd while idle, so an idle pool never keeps the process alive.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { share } from './codec-copy.js';

export type JobRequest =
  | { id: number; op: 'compress'; level: number; input: Uint8Array }
  | { id: number; op: 'decompress'; size: number; input: Uint8Array };
export type JobReply = { id: number; output: Uint8Array | null } | { id: number; error: string };
type JobInput = { op: 'compress'; level: number } | { op: 'decompress'; size: number };

/** The pool failed the job (worker died, shutdown, input not sendable), not the codec. */
export class PoolError extends Error {
  override name = 'PoolError';
}

interface Job {
  req: JobRequest;
  resolve: (out: Buffer | null) => void;
  reject: (err: Error) => void;
}

// At least two, so one multi-second high-level compression cannot stall every other job.
const POOL_SIZE = Math.min(4, Math.max(2, availableParallelism()));
const workers = new Set<Worker>();
const idle: Worker[] = [];
const running = new Map<Worker, Job>();
// Reads wait on decompression, so it goes ahead of queued compressions.
const decompressQueue: Job[] = [];
const compressQueue: Job[] = [];
let nextId = 0;

/**
 * Runs one zstd job off the event loop. The input is copied for the worker (see share()) rather
 * than transferred: transferring would detach the caller's buffer, which it still uses.
 */
export function runZstd(job: JobInput & { op: 'decompress' }, input: Uint8Array): Promise<Buffer>;
export function runZstd(job: JobInput, input: Uint8Array): Promise<Buffer | null>;
export async function runZstd(job: JobInput, input: Uint8Array): Promise<Buffer | null> {
  const shared = await share(input);
  return new Promise((resolve, reject) => {
    const req: JobRequest = { ...job, id: nextId++, input: shared };
    (job.op === 'decompress' ? decompressQueue : compressQueue).push({ req, resolve, reject });
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
    try {
      worker.postMessage(job.req);
    } catch (err) {
      // e.g. out of memory while cloning a huge input; the worker itself is fine.
      idle.push(worker);
      job.reject(new PoolError(`cannot send value to codec worker: ${err instanceof Error ? err.message : String(err)}`));
      continue;
    }
    running.set(worker, job);
    worker.ref();
  }
}

function spawn(): Worker {
  const worker = new Worker(new URL('./codec-worker.js', import.meta.url));
  workers.add(worker);
  worker.on('message', (reply: JobReply) => {
    const job = running.get(worker);
    running.delete(worker);
    worker.unref();
    idle.push(worker);
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
  worker.on('exit', (code) => lost(new Error(`codec worker exited with code ${code}`)));
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
