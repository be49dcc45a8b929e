#!/usr/bin/env node
// The latency probe of bench/big-blobs.mjs, in a process of its own so that nothing the bench's
// own client does (parsing a 500 MiB reply, building a 500 MiB command) delays the probe's event
// loop: what it measures is the server's. Small GETs, one at a time, between "start" and "stop"
// lines on stdin; each "stop" prints one JSON line {n, p50, p99, max} (ms). "quit" ends it.
//
//   node bench/probe-gets.mjs PORT
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';

const port = Number(process.argv[2]);
const client = new Redis({ port, host: '127.0.0.1' });
const keys = Array.from({ length: 100 }, (_, i) => `probe:${i}`);
for (const k of keys) await client.set(k, 'x'.repeat(100));

let running = null;
let stopping = false;

async function probe() {
  const lat = [];
  let i = 0;
  while (!stopping) {
    const t = process.hrtime.bigint();
    await client.get(keys[i++ % keys.length]);
    lat.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  lat.sort((a, b) => a - b);
  const q = (x) => lat[Math.min(lat.length - 1, Math.floor(x * lat.length))];
  return { n: lat.length, p50: q(0.5), p99: q(0.99), max: lat[lat.length - 1] };
}

process.stdout.write('ready\n');
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'start' && running === null) {
    stopping = false;
    running = probe();
  } else if (line === 'stop' && running !== null) {
    stopping = true;
    process.stdout.write(`${JSON.stringify(await running)}\n`);
    running = null;
  } else if (line === 'quit') {
    break;
  }
}
// Ended by "quit" or by the bench's stdin closing (the bench gone).
client.disconnect();
process.exit(0);
