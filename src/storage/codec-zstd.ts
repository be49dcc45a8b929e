// zstd one-shot coding, shared by the event-loop thread (small values) and codec-worker.ts (large
// ones). zstd-napi only has synchronous calls, hence the split.
import zstd from 'zstd-napi/binding.js';

// Reused destination for small compressions; big ones get their own allocation so a 512 MiB
// value does not pin a 512 MiB scratch buffer forever. Per thread, as each isolate has its own.
const SCRATCH_BYTES = 64 * 1024;
let scratch: Buffer | undefined;
let cctx: zstd.CCtx | undefined;
let dctx: zstd.DCtx | undefined;

/**
 * Compressed bytes, or null when they would not be smaller than the input. With `own` the result
 * gets its own ArrayBuffer, so a worker can transfer it instead of copying it back.
 */
export function zstdCompress(input: Uint8Array, level: number, own: boolean): Buffer | null {
  if (cctx === undefined) {
    cctx = new zstd.CCtx();
    // 4 bytes of XXH64 per frame: lets decode reject corrupt rows instead of returning garbage.
    cctx.setParameter(zstd.CParameter.checksumFlag, 1);
  }
  cctx.setParameter(zstd.CParameter.compressionLevel, level);
  const bound = zstd.compressBound(input.length);
  const dst = bound <= SCRATCH_BYTES ? (scratch ??= Buffer.allocUnsafeSlow(SCRATCH_BYTES)) : Buffer.allocUnsafeSlow(bound);
  const n = cctx.compress2(dst, input);
  if (n >= input.length) return null;
  // Copy out: dst is compressBound-sized (or the shared scratch), so returning a view would pin it.
  const out = own ? Buffer.allocUnsafeSlow(n) : Buffer.allocUnsafe(n);
  dst.copy(out, 0, 0, n);
  return out;
}

/** Decompressed size recorded in the frame header; throws on a header that does not parse. */
export function zstdContentSize(frame: Uint8Array): number {
  const size = zstd.getFrameContentSize(frame);
  // We always write the size (compress2 knows it); a frame without one is not ours.
  if (size === null) throw new Error('zstd frame does not record its size');
  return size;
}

/** `size` is the caller-checked zstdContentSize of `frame`; trailing bytes are rejected by zstd. */
export function zstdDecompress(frame: Uint8Array, size: number, own: boolean): Buffer {
  dctx ??= new zstd.DCtx();
  const out = own ? Buffer.allocUnsafeSlow(size) : Buffer.allocUnsafe(size);
  const n = dctx.decompress(out, frame);
  if (n !== size) throw new Error(`zstd frame decoded to ${n} bytes, header says ${size}`);
  return out;
}
