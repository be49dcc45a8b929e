// Copies of big buffers on the event-loop thread, done a slice at a time so that moving a 512 MiB
// value around never blocks the loop in one go. The cost is mostly first-touch page faults on the
// fresh destination: measured 64 MiB in one copy = 180 ms on the dev VM (~3.6 ms per MiB slice).
import { setImmediate } from 'node:timers/promises';

const SLICE_BYTES = 1024 * 1024;

/**
 * The same bytes in memory a worker can read in place (SharedArrayBuffer). Small inputs are
 * returned as they are: postMessage's own copy of them costs less than one slice.
 */
export async function share(input: Uint8Array): Promise<Uint8Array> {
  if (input.length <= SLICE_BYTES) return input;
  const shared = new Uint8Array(new SharedArrayBuffer(input.length));
  for (let offset = 0; offset < input.length; offset += SLICE_BYTES) {
    if (offset > 0) await setImmediate();
    shared.set(input.subarray(offset, offset + SLICE_BYTES), offset);
  }
  return shared;
}

/** Concatenation of `chunks` (total bytes `total`), yielding to the loop after each slice. */
export async function gather(chunks: readonly Buffer[], total: number): Promise<Buffer> {
  const only = chunks.length === 1 ? chunks[0] : undefined;
  // A lone chunk is used as is, unless it would pin a mostly empty output buffer (zlib hands out
  // views of its chunkSize-sized buffers); copying it then costs under one slice.
  if (only !== undefined && only.length >= only.buffer.byteLength / 2) return only;
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  let sinceYield = 0;
  for (const chunk of chunks) {
    if (sinceYield >= SLICE_BYTES) {
      await setImmediate();
      sinceYield = 0;
    }
    chunk.copy(out, offset);
    offset += chunk.length;
    sinceYield += chunk.length;
  }
  return out;
}
