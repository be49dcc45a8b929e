// A probe client on a thread of its own (bench/bounded-work.mjs): times small GETs one at a time
// until told to stop, so the bench's own parsing of a large reply does not delay its timings.
import { parentPort, workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';
import { timeGets } from './lib.mjs';

const client = new Redis({ port: workerData.port, host: '127.0.0.1' });
let stop = false;
parentPort.on('message', (m) => {
  if (m === 'stop') stop = true;
});
parentPort.postMessage('ready');
const result = await timeGets(client, workerData.keys, 600_000, () => stop);
client.disconnect();
parentPort.postMessage(result);
