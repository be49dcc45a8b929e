// Value compression. Each row stores the codec id it was written with and is always decoded by
// that id, so changing the configured algorithm never strands old rows.
//
// Small values are coded inline: below the limits here the work costs less than the hop to
// another thread (measured ~55 µs of event-loop time per zlib async call, ~20 µs per lz4 async
// call, ~25 µs per worker round trip). Everything larger runs on libuv's pool (zlib, lz4) or on
// codec-pool.ts workers (zstd, whose binding is sync-only), never on the event loop.
import zlib from 'node:zlib';
import { compress as lz4Compress, compressSync as lz4CompressSync, uncompress as lz4Uncompress, uncompressSync as lz4UncompressSync } from 'lz4-napi';
import { gather } from './codec-copy.js';
import { PoolError, runZstd, shutdownPool } from './codec-pool.js';
import { zstdCompress, zstdContentSize, zstdDecompress } from './codec-zstd.js';

export type Algorithm = 'none' | 'gzip' | 'zstd' | 'lz4' | 'brotli';

/** Stored in every row: never renumber. */
export const CODEC_IDS: Readonly<Record<Algorithm, number>> = Object.freeze({ none: 0, gzip: 1, zstd: 2, lz4: 3, brotli: 4 });

/** The name of a stored codec id (introspection); an id this version does not know is shown as such. */
export function codecName(id: number): string {
  for (const [name, n] of Object.entries(CODEC_IDS)) if (n === id) return name;
  return `unknown(${id})`;
}

export interface CompressionSettings {
  algorithm: Algorithm;
  level: number;
}

export interface Encoded {
  codec: number;
  payload: Buffer;
}

/** A stored payload cannot be decoded: corrupt, truncated, or an unknown codec id. */
export class CodecError extends Error {
  override name = 'CodecError';
}

const KiB = 1024;
// Below this, frame overhead (gzip 18 B, zstd ~13 B) eats most of any saving.
const MIN_COMPRESS_BYTES = 64;
// Largest value the store accepts: a header claiming more is corrupt, and must not drive an allocation.
const MAX_VALUE_BYTES = 512 * 1024 * 1024;
// Decoding runs at 300 MB/s (brotli, gzip) to 3 GB/s (lz4): 32 KiB of output is at most ~100 µs.
const INLINE_DECODE_BYTES = 32 * KiB;
// Output per libuv job for zlib (its default, 16 KiB, means an event-loop callback per 16 KiB).
// Small enough that other thread-pool work gets a turn between the jobs of a huge value.
const ASYNC_CHUNK_BYTES = 1024 * KiB;

/**
 * Largest value compressed inline: where the measured inline cost stays within ~2x the event-loop
 * cost of going async (budget ~100 µs for zlib, ~50 µs for lz4 and zstd). Slow levels are slow
 * even on tiny inputs (brotli 11 takes ~1 ms on 512 bytes), hence 0.
 */
function inlineEncodeLimit({ algorithm, level }: CompressionSettings): number {
  switch (algorithm) {
    case 'none':
      return Infinity;
    case 'lz4':
      return 16 * KiB;
    case 'gzip':
      return level <= 3 ? 16 * KiB : level <= 6 ? 8 * KiB : 4 * KiB;
    case 'zstd':
      return level <= 3 ? 16 * KiB : level <= 5 ? 8 * KiB : level <= 7 ? 4 * KiB : level <= 10 ? 2 * KiB : level <= 12 ? 512 : 0;
    case 'brotli':
      return level <= 1 ? 16 * KiB : level <= 3 ? 8 * KiB : level <= 4 ? 4 * KiB : level <= 9 ? 2 * KiB : 0;
  }
}

/**
 * Compresses per settings; returns codec 0 and the original buffer when compression is off, the
 * value is empty/tiny, or the result is not smaller. A Promise only for values over the inline limit.
 */
export function encode(value: Buffer, settings: CompressionSettings | null): Encoded | Promise<Encoded> {
  if (settings === null || settings.algorithm === 'none' || value.length < MIN_COMPRESS_BYTES) return raw(value);
  const codec = CODEC_IDS[settings.algorithm];
  const pick = (out: Buffer | null): Encoded => (out !== null && out.length < value.length ? { codec, payload: out } : raw(value));
  if (value.length <= inlineEncodeLimit(settings)) return pick(compressInline(value, settings));
  return compressAsync(value, settings).then(pick);
}

function raw(value: Buffer): Encoded {
  return { codec: 0, payload: value };
}

function compressInline(value: Buffer, { algorithm, level }: CompressionSettings): Buffer | null {
  switch (algorithm) {
    case 'gzip':
      return zlib.gzipSync(value, { level });
    case 'zstd':
      return zstdCompress(value, level, false);
    case 'lz4':
      return lz4CompressSync(value);
    case 'brotli':
      return zlib.brotliCompressSync(value, brotliOptions(value.length, level));
    case 'none':
      return null;
  }
}

function compressAsync(value: Buffer, { algorithm, level }: CompressionSettings): Promise<Buffer | null> {
  switch (algorithm) {
    case 'gzip':
      return notSmallerAsNull(zlibRun(zlib.createGzip({ level, chunkSize: ASYNC_CHUNK_BYTES }), value, value.length - 1));
    case 'zstd':
      return runZstd({ op: 'compress', level }, value);
    case 'lz4':
      return lz4Compress(value);
    case 'brotli': {
      const stream = zlib.createBrotliCompress({ ...brotliOptions(value.length, level), chunkSize: ASYNC_CHUNK_BYTES });
      return notSmallerAsNull(zlibRun(stream, value, value.length - 1));
    }
    case 'none':
      return Promise.resolve(null);
  }
}

function brotliOptions(size: number, quality: number): zlib.BrotliOptions {
  // A window no larger than the value: brotli 5..9 otherwise sets up tables for the default 4 MiB
  // window on every call (brotli 9 on 512 bytes: 5.8 ms with the default, 43 µs with this).
  const lgwin = Math.min(22, Math.max(10, 32 - Math.clz32(size + 16 - 1)));
  const P = zlib.constants;
  return { params: { [P.BROTLI_PARAM_QUALITY]: quality, [P.BROTLI_PARAM_SIZE_HINT]: size, [P.BROTLI_PARAM_LGWIN]: lgwin } };
}

/** Decodes by the row's own codec id. Throws (inline) or rejects (async) CodecError on bad data. */
export function decode(codec: number, payload: Buffer): Buffer | Promise<Buffer> {
  switch (codec) {
    case 0:
      return payload;
    case 1:
      return gunzip(payload);
    case 2:
      return unzstd(payload);
    case 3:
      return unlz4(payload);
    case 4:
      return unbrotli(payload);
    default:
      throw new CodecError(`unknown codec id ${codec}`);
  }
}

function gunzip(payload: Buffer): Buffer | Promise<Buffer> {
  if (payload.length < 18) throw new CodecError(`gzip payload too short (${payload.length} bytes)`);
  // ISIZE trailer: the decoded length (mod 2^32, exact below 4 GiB). It bounds the output, so a
  // corrupt payload cannot inflate past it.
  const size = payload.readUInt32LE(payload.length - 4);
  checkSize(size, 'gzip');
  if (size <= INLINE_DECODE_BYTES && payload.length <= INLINE_DECODE_BYTES) {
    return checkLength(inline(() => zlib.gunzipSync(payload, { maxOutputLength: Math.max(1, size) })), size, 'gzip');
  }
  // Room for the whole value in one output buffer: it comes back as is, with no concatenation copy.
  const stream = zlib.createGunzip({ chunkSize: Math.max(zlib.constants.Z_MIN_CHUNK, size + 1) });
  return corruptOnReject(zlibRun(stream, payload, size)).then((out) => checkLength(out, size, 'gzip'));
}

function unzstd(payload: Buffer): Buffer | Promise<Buffer> {
  const size = inline(() => zstdContentSize(payload));
  checkSize(size, 'zstd');
  if (size <= INLINE_DECODE_BYTES) return inline(() => zstdDecompress(payload, size, false));
  return corruptOnReject(runZstd({ op: 'decompress', size }, payload));
}

function unlz4(payload: Buffer): Buffer | Promise<Buffer> {
  // lz4-napi's block format: u32 LE decoded size, then the block. lz4-napi does not check the
  // size against the output (a 0xFFFFFFFF prefix decodes "fine"), so we do.
  if (payload.length < 5) throw new CodecError(`lz4 payload too short (${payload.length} bytes)`);
  const size = payload.readUInt32LE(0);
  checkSize(size, 'lz4');
  if (size <= INLINE_DECODE_BYTES) return checkLength(inline(() => lz4UncompressSync(payload)), size, 'lz4');
  return corruptOnReject(lz4Uncompress(payload)).then((out) => checkLength(out, size, 'lz4'));
}

function unbrotli(payload: Buffer): Buffer | Promise<Buffer> {
  if (payload.length === 0) throw new CodecError('empty brotli payload');
  const offThread = (): Promise<Buffer> =>
    corruptOnReject(zlibRun(zlib.createBrotliDecompress({ chunkSize: ASYNC_CHUNK_BYTES }), payload, MAX_VALUE_BYTES));
  // Brotli does not record the decoded size up front. Payloads this small usually decode to under
  // the inline limit (text compresses ~4x): try inline with the output capped, else go async.
  if (payload.length > INLINE_DECODE_BYTES / 4) return offThread();
  // `info` (missing from @types/node's BrotliOptions) makes it return the engine too, whose
  // bytesWritten is how much input the decoder consumed.
  const options: zlib.BrotliOptions & { info: true } = { info: true, maxOutputLength: INLINE_DECODE_BYTES };
  let result: ZlibInfo;
  try {
    result = zlib.brotliDecompressSync(payload, options) as unknown as ZlibInfo;
  } catch (err) {
    if (isTooLarge(err)) return offThread();
    throw corrupt(err);
  }
  checkConsumed(result.engine.bytesWritten, payload.length);
  return result.buffer;
}

/**
 * Decodes on the calling thread whatever the size: for Lua scripts, which must read a value within
 * the script's turn. The cost is bounded by the value size limit (measured in docs/scripting.md).
 */
export function decodeSync(codec: number, payload: Buffer): Buffer {
  try {
    switch (codec) {
      case 0:
        return payload;
      case 1: {
        if (payload.length < 18) throw new CodecError(`gzip payload too short (${payload.length} bytes)`);
        const size = payload.readUInt32LE(payload.length - 4);
        checkSize(size, 'gzip');
        return checkLength(zlib.gunzipSync(payload, { maxOutputLength: Math.max(1, size) }), size, 'gzip');
      }
      case 2: {
        const size = zstdContentSize(payload);
        checkSize(size, 'zstd');
        return zstdDecompress(payload, size, false);
      }
      case 3: {
        if (payload.length < 5) throw new CodecError(`lz4 payload too short (${payload.length} bytes)`);
        const size = payload.readUInt32LE(0);
        checkSize(size, 'lz4');
        return checkLength(lz4UncompressSync(payload), size, 'lz4');
      }
      case 4:
        return zlib.brotliDecompressSync(payload, { maxOutputLength: MAX_VALUE_BYTES });
      default:
        throw new CodecError(`unknown codec id ${codec}`);
    }
  } catch (err) {
    throw err instanceof CodecError ? err : corrupt(err);
  }
}

/** Stops worker threads (if any were started). Coding still works afterwards; workers restart. */
export function shutdownCodecs(): Promise<void> {
  return shutdownPool();
}

class OutputTooLarge extends Error {}

interface ZlibInfo {
  buffer: Buffer;
  engine: { bytesWritten: number };
}

/**
 * Brotli (and zlib for gzip) stop at the end of the stream and ignore what follows, so a payload
 * whose damaged start reads as a complete empty stream (~4% of random inputs do) would decode as
 * an empty value. Our payloads never have trailing bytes.
 */
function checkConsumed(consumed: number, total: number): void {
  if (consumed !== total) throw new CodecError(`corrupt payload: ${total - consumed} bytes after the end of the stream`);
}

/**
 * Runs `input` through a zlib stream on libuv's pool. Rejects with OutputTooLarge as soon as the
 * output passes `maxOutput`, which also stops the work. zlib.gzip() and friends would do most of
 * this, but they concatenate the output in one synchronous copy (256 MiB: ~1 s of blocked loop).
 */
function zlibRun(stream: zlib.Gzip | zlib.Gunzip | zlib.BrotliCompress | zlib.BrotliDecompress, input: Buffer, maxOutput: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    stream.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > maxOutput) {
        stream.destroy();
        reject(new OutputTooLarge(`output exceeds ${maxOutput} bytes`));
      } else {
        chunks.push(chunk);
      }
    });
    stream.on('error', reject);
    stream.on('end', () => {
      try {
        checkConsumed(stream.bytesWritten, input.length);
        resolve(gather(chunks, total));
      } catch (err) {
        reject(err);
      }
    });
    stream.end(input);
  });
}

function notSmallerAsNull(p: Promise<Buffer>): Promise<Buffer | null> {
  return p.catch((err: unknown) => {
    if (err instanceof OutputTooLarge) return null;
    throw err;
  });
}

function checkSize(size: number, what: string): void {
  if (size > MAX_VALUE_BYTES) throw new CodecError(`${what} header claims ${size} bytes, more than any value`);
}

function checkLength(out: Buffer, size: number, what: string): Buffer {
  if (out.length !== size) throw new CodecError(`${what} payload decoded to ${out.length} bytes, header says ${size}`);
  return out;
}

function isTooLarge(err: unknown): boolean {
  return err instanceof RangeError && (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
}

function corrupt(err: unknown): CodecError {
  if (err instanceof CodecError) return err;
  return new CodecError(`corrupt payload: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

function inline<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw corrupt(err);
  }
}

/** Codec failures become CodecError; pool failures (worker died, shutdown) are not the row's fault. */
function corruptOnReject(p: Promise<Buffer>): Promise<Buffer> {
  return p.catch((err: unknown) => {
    throw err instanceof PoolError ? err : corrupt(err);
  });
}
