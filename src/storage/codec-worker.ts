// Worker-thread side of codec-pool.ts: runs zstd, whose binding has no async API.
import { parentPort } from 'node:worker_threads';
import { zstdCompress, zstdDecompress } from './codec-zstd.js';
import type { JobReply, JobRequest } from './codec-pool.js';

const port = parentPort;
if (port === null) throw new Error('codec-worker.js must be started as a worker thread');

port.on('message', (req: JobRequest) => {
  let reply: JobReply;
  try {
    const output =
      req.op === 'compress' ? zstdCompress(req.input, req.level, true) : zstdDecompress(req.input, req.size, true);
    reply = { output };
  } catch (err) {
    reply = { error: err instanceof Error ? err.message : String(err) };
  }
  // Outputs own their (never shared) ArrayBuffer (own = true): hand the memory over, don't copy it.
  const transfer = 'output' in reply && reply.output !== null ? [reply.output.buffer as ArrayBuffer] : [];
  port.postMessage(reply, transfer);
});
