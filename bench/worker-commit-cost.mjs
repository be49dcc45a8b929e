#!/usr/bin/env node
// What moving a shard's SQLite writes to a worker thread would take off the event loop (issue 20,
// point 4), measured without the server around it: the loop packs each batch of 1 KiB SETs into one
// ArrayBuffer and transfers it to a worker that owns the shard's connection and applies the batch with
// the shard's own upsert (src/storage/shard.ts), then acknowledges. Compared with the same batches
// applied on the loop itself. CPU is read per thread from /proc/thread-self/stat (clock ticks), so
// the loop's share and the worker's share are told apart.
//
//   npm run build && node bench/worker-commit-cost.mjs [--rows 200000] [--keys 20000] [--batches 1,16,128]
//
// WAL checkpoints are left out (the server runs them on its maintenance thread).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Shard } from '../dist/src/storage/shard.js';

const SQLITE = { synchronous: 'NORMAL', cache_size_mb: 16, busy_timeout_ms: 5000, mmap_size_mb: 0 };
const VALUE = 1024;
const KEY = 16;
const TICK_US = 1e6 / 100; // USER_HZ is 100 on Linux

/** CPU time of the calling thread, in µs (utime + stime of /proc/thread-self/stat). */
function threadCpuUs() {
  const stat = readFileSync('/proc/thread-self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_US;
}

const key = (i) => Buffer.from(`key:${String(i).padStart(12, '0')}`);

function openShard(path) {
  const shard = new Shard(0, path, SQLITE);
  shard.setAutoCheckpoint(1 << 30);
  return shard;
}

function setWrite(k, data, now) {
  return { kind: 'set', ns: null, key: k, data, codec: 0, size: data.length, now, expiresAt: null };
}

if (!isMainThread) {
  // The worker: owns the connection, applies each transferred batch in one transaction.
  const shard = openShard(workerData.path);
  parentPort.on('message', (msg) => {
    if (msg.type === 'cpu') {
      parentPort.postMessage({ type: 'cpu', us: threadCpuUs() });
      return;
    }
    if (msg.type === 'checkpoint') {
      shard.checkpoint();
      parentPort.postMessage({ type: 'checkpointed' });
      return;
    }
    const bytes = Buffer.from(msg.buffer);
    const rows = bytes.length / (KEY + VALUE);
    const now = Date.now();
    const groups = [];
    for (let r = 0; r < rows; r++) {
      const at = r * (KEY + VALUE);
      groups.push([setWrite(bytes.subarray(at, at + KEY), bytes.subarray(at + KEY, at + KEY + VALUE), now)]);
    }
    shard.applyGroups(groups);
    parentPort.postMessage({ type: 'ack', rows });
  });
} else {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '200000' },
      keys: { type: 'string', default: '20000' },
      batches: { type: 'string', default: '1,16,128' },
    },
  });
  const ROWS = Number(values.rows);
  const KEYS = Number(values.keys);
  const BATCHES = values.batches.split(',').map(Number);
  const value = Buffer.alloc(VALUE, 'x');
  const keys = Array.from({ length: KEYS }, (_, i) => key(i));
  const dir = mkdtempSync(join(tmpdir(), 'blobasaur-workercommit-'));
  const path = join(dir, 'shard.db');
  try {
    // Fill the table so updates hit existing rows, as in the benchmark.
    const fill = openShard(path);
    const now = Date.now();
    for (let i = 0; i < KEYS; i += 1000) {
      fill.applyGroups(Array.from({ length: Math.min(1000, KEYS - i) }, (_, j) => [setWrite(keys[i + j], value, now)]));
    }
    fill.checkpoint();

    const lines = [];
    for (const batch of BATCHES) {
      // On the loop, as today.
      fill.checkpoint();
      let loop = threadCpuUs();
      let started = process.hrtime.bigint();
      for (let done = 0; done < ROWS; done += batch) {
        const t = Date.now();
        fill.applyGroups(Array.from({ length: batch }, () => [setWrite(keys[Math.floor(Math.random() * KEYS)], value, t)]));
      }
      const onLoop = (threadCpuUs() - loop) / ROWS;
      const onLoopWall = Number(process.hrtime.bigint() - started) / 1e3 / ROWS;

      // On a worker: the loop packs and transfers, the worker commits. Up to 4 batches in flight, as
      // group commit would keep the next batch forming while one commits.
      fill.checkpoint();
      const worker = new Worker(new URL(import.meta.url), { workerData: { path } });
      const ask = (msg, type) =>
        new Promise((resolve) => {
          const on = (m) => {
            if (m.type === type) {
              worker.off('message', on);
              resolve(m);
            }
          };
          worker.on('message', on);
          worker.postMessage(msg);
        });
      const workerBefore = (await ask({ type: 'cpu' }, 'cpu')).us;
      loop = threadCpuUs();
      started = process.hrtime.bigint();
      let sent = 0;
      let acked = 0;
      await new Promise((resolve) => {
        const send = () => {
          while (sent < ROWS && sent - acked < 4 * batch) {
            const buffer = new ArrayBuffer(batch * (KEY + VALUE));
            const bytes = Buffer.from(buffer);
            for (let r = 0; r < batch; r++) {
              keys[Math.floor(Math.random() * KEYS)].copy(bytes, r * (KEY + VALUE));
              value.copy(bytes, r * (KEY + VALUE) + KEY);
            }
            worker.postMessage({ type: 'batch', buffer }, [buffer]);
            sent += batch;
          }
        };
        worker.on('message', (m) => {
          if (m.type !== 'ack') return;
          acked += m.rows;
          if (acked >= ROWS) resolve();
          else send();
        });
        send();
      });
      const loopShare = (threadCpuUs() - loop) / ROWS;
      const wall = Number(process.hrtime.bigint() - started) / 1e3 / ROWS;
      const workerShare = ((await ask({ type: 'cpu' }, 'cpu')).us - workerBefore) / ROWS;
      await worker.terminate();
      lines.push(
        `batch ${String(batch).padStart(4)}: on the loop ${onLoop.toFixed(1)} µs CPU/row (${onLoopWall.toFixed(1)} wall); ` +
          `on a worker: loop ${loopShare.toFixed(1)} + worker ${workerShare.toFixed(1)} µs CPU/row (${wall.toFixed(1)} wall)`,
      );
    }
    fill.close();
    process.stdout.write(`${ROWS} SETs of ${VALUE} B over ${KEYS} keys, load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`);
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
