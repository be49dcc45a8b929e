/**
 * The maintenance thread: WAL checkpoints and expiry sweep steps for the shards, each through its
 * own connection to the shard's file. Both would otherwise run on the event loop — a checkpoint
 * copies pages and fsyncs, a sweep step deletes rows and vacuums — and stall every client meanwhile.
 * The server never commits to a shard while a sweep step runs there (the write queue waits for it),
 * so the two connections do not contend for the write lock; readers never block in WAL mode.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { MaintenanceReply, MaintenanceRequest, MaintenanceWorkerData } from './maintenance.js';
import { SweepStep } from './sweep.js';
import { registerSlotFunction } from './schema.js';

const port = parentPort;
if (port === null) throw new Error('maintenance-worker must run as a worker thread');

/**
 * This thread yields the CPU to the event loop and to everything else on the machine: on Linux a
 * thread's nice value is its own (setpriority on its thread id). Elsewhere it keeps the default.
 */
const NICE = 19;
try {
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  if (Number.isInteger(tid) && tid > 0) setPriority(tid, NICE);
} catch {
  // Not Linux, or not permitted: the default priority is correct, only less polite.
}

const settings = workerData as MaintenanceWorkerData;

interface Connection {
  db: Database.Database;
  /** Made at the first sweep: chunk files are only checkpointed, and have no `blobs` to prepare it on. */
  sweep: SweepStep | null;
}
const connections = new Map<string, Connection>();

function connection(path: string): Connection {
  let c = connections.get(path);
  if (c === undefined) {
    const db = new Database(path, { fileMustExist: true });
    registerSlotFunction(db);
    // Waiting here blocks only this thread (e.g. behind an external backup's read transaction).
    db.pragma('busy_timeout = 1000');
    db.pragma(`synchronous = ${settings.synchronous}`);
    c = { db, sweep: null };
    connections.set(path, c);
  }
  return c;
}

function handle(msg: MaintenanceRequest): MaintenanceReply {
  if (msg.op === 'release') {
    for (const path of msg.paths) {
      // Checkpointed here first, so the server's own close (the last connection, which
      // checkpoints and deletes the WAL) finds nothing to copy and takes no time on its loop.
      try {
        connection(path).db.pragma('wal_checkpoint(TRUNCATE)');
      } catch {
        // A busy or damaged file: the server's close does what is left.
      }
      connections.get(path)?.db.close();
      connections.delete(path);
    }
    return { op: 'release', id: msg.id };
  }
  const started = performance.now();
  const c = connection(msg.path);
  if (msg.op === 'checkpoint') {
    // PASSIVE copies what it can without waiting for the server's readers or writer.
    const [row] = c.db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
    return { op: 'checkpoint', shard: msg.shard, ok: true, millis: performance.now() - started, walFrames: row.log };
  }
  const sweep = (c.sweep ??= new SweepStep(c.db));
  const result = c.db.transaction(() => sweep.run(msg.now, msg.limit)).immediate();
  return { op: 'sweep', id: msg.id, shard: msg.shard, ok: true, millis: performance.now() - started, result };
}

port.on('message', (msg: MaintenanceRequest | 'close') => {
  if (msg === 'close') {
    for (const c of connections.values()) c.db.close();
    connections.clear();
    port.close();
    return;
  }
  let reply: MaintenanceReply;
  try {
    reply = handle(msg);
  } catch (err) {
    // SQLite's code goes along: the server marks a shard damaged by it (shard.ts isDamageCode).
    const code = (err as { code?: unknown } | null)?.code;
    const error = `${err instanceof Error ? err.message : String(err)}${typeof code === 'string' ? ` (${code})` : ''}`;
    reply =
      msg.op === 'sweep'
        ? { op: 'sweep', id: msg.id, shard: msg.shard, ok: false, error }
        : msg.op === 'release'
          ? { op: 'release', id: msg.id }
          : { op: 'checkpoint', shard: msg.shard, ok: false, error };
  }
  port.postMessage(reply);
});
