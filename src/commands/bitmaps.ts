/**
 * Bitmaps on plain blobs, as Redis 7.0 does them on strings: SETBIT, GETBIT, BITCOUNT, BITPOS.
 * Bit 0 is the most significant bit of the first byte. SETBIT grows the blob with zero bytes,
 * up to proto_max_bulk_len (ks.maxValueBytes), and keeps the key's TTL.
 */
import { ErrorReply, type Reply } from '../protocol/reply.js';
import { keyword, NOT_INTEGER_TEXT, parseInt64 } from './args.js';
import { defineCommand, keyAt } from './define.js';
import { SYNTAX_ERROR } from './errors.js';
import { modify } from './modify.js';
import type { CommandSpec, Handler } from './types.js';
import type { Keyspace, PendingValue } from '../storage/keyspace.js';

const NOT_INTEGER = new ErrorReply(NOT_INTEGER_TEXT);
const BAD_OFFSET = new ErrorReply('ERR bit offset is not an integer or out of range');
const BAD_BIT = new ErrorReply('ERR bit is not an integer or out of range');

/** Redis' getBitOffsetFromArgument: a non-negative integer whose byte is within proto_max_bulk_len. */
function bitOffset(ks: Keyspace, arg: Buffer): number | ErrorReply {
  const n = parseInt64(arg);
  if (n === null || n < 0n || n >> 3n >= BigInt(ks.maxValueBytes)) return BAD_OFFSET;
  return Number(n);
}

/** A reply computed from a value that may still be decoding. */
function withValue(value: PendingValue | null, f: (v: Buffer | null) => Reply): Reply | Promise<Reply> {
  return value instanceof Promise ? value.then(f) : f(value);
}

const setbit: Handler = ({ ks, now }, args) => {
  const offset = bitOffset(ks, args[2]);
  if (offset instanceof ErrorReply) return offset;
  const on = parseInt64(args[3]);
  if (on !== 0n && on !== 1n) return BAD_BIT;
  const byte = Math.floor(offset / 8);
  const mask = 1 << (7 - (offset % 8));
  return modify(ks, null, args[1], now, (current) => {
    const old = current !== null && byte < current.length ? (current[byte] & mask) !== 0 : false;
    const grows = current === null || byte >= current.length;
    // Redis writes only when the key is created, grows, or the bit changes.
    if (!grows && old === (on === 1n)) return { reply: old ? 1 : 0 };
    const out = Buffer.alloc(Math.max(current?.length ?? 0, byte + 1));
    current?.copy(out);
    out[byte] = on === 1n ? out[byte] | mask : out[byte] & ~mask;
    return { write: out, reply: old ? 1 : 0 };
  });
};

const getbit: Handler = ({ ks, now }, args) => {
  const offset = bitOffset(ks, args[2]);
  if (offset instanceof ErrorReply) return offset;
  const byte = Math.floor(offset / 8);
  return withValue(ks.get(null, args[1], now), (v) => (v !== null && byte < v.length && (v[byte] & (1 << (7 - (offset % 8)))) !== 0 ? 1 : 0));
};

const POPCOUNT = new Uint8Array(256).map((_, i) => {
  let n = 0;
  for (let b = i; b !== 0; b >>= 1) n += b & 1;
  return n;
});

function popcount(v: Buffer, start: number, end: number): number {
  let n = 0;
  for (let i = start; i <= end; i++) n += POPCOUNT[v[i]];
  return n;
}

/** An index argument: any signed 64-bit integer (exactness beyond 2^53 does not matter once clamped). */
function indexArg(arg: Buffer): number | null {
  const n = parseInt64(arg);
  return n === null ? null : Number(n);
}

/** The range in bytes with edge masks, as Redis 7.0 computes it for BITCOUNT and BITPOS. */
interface Range {
  start: number;
  end: number;
  /** Bits of the first/last byte outside a BIT range (set bits in these masks are excluded). */
  firstMask: number;
  lastMask: number;
}

function clampRange(start: number, end: number, length: number, isBit: boolean): Range {
  const total = isBit ? length * 8 : length;
  if (start < 0) start = total + start;
  if (end < 0) end = total + end;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= total) end = total - 1;
  let firstMask = 0;
  let lastMask = 0;
  if (isBit && start <= end) {
    firstMask = ~((1 << (8 - (start & 7))) - 1) & 0xff;
    lastMask = (1 << (7 - (end & 7))) - 1;
    start = Math.floor(start / 8);
    end = Math.floor(end / 8);
  }
  return { start, end, firstMask, lastMask };
}

/** BITCOUNT key [start end [BYTE|BIT]]: a missing key is 0 whatever the arguments. */
const bitcount: Handler = ({ ks, now }, args) =>
  withValue(ks.get(null, args[1], now), (v) => {
    if (v === null) return 0;
    let r: Range;
    if (args.length === 4 || args.length === 5) {
      const start = indexArg(args[2]);
      if (start === null) return NOT_INTEGER;
      const end = indexArg(args[3]);
      if (end === null) return NOT_INTEGER;
      if (start < 0 && end < 0 && start > end) return 0;
      let isBit = false;
      if (args.length === 5) {
        const unit = keyword(args[4]);
        if (unit === 'bit') isBit = true;
        else if (unit !== 'byte') return SYNTAX_ERROR;
      }
      r = clampRange(start, end, v.length, isBit);
    } else if (args.length === 2) {
      r = { start: 0, end: v.length - 1, firstMask: 0, lastMask: 0 };
    } else {
      return SYNTAX_ERROR;
    }
    if (r.start > r.end) return 0;
    let count = popcount(v, r.start, r.end);
    if (r.firstMask !== 0) count -= POPCOUNT[v[r.start] & r.firstMask];
    if (r.lastMask !== 0) count -= POPCOUNT[v[r.end] & r.lastMask];
    return count;
  });

/**
 * Redis' redisBitpos: the position of the first bit equal to `bit` in `count` bytes from `from`;
 * none found is -1 when looking for 1, and count*8 when looking for 0 (the string is taken as
 * zero-padded on the right).
 */
function firstBit(bytes: Uint8Array, from: number, count: number, bit: 0 | 1): number {
  const skip = bit === 1 ? 0 : 0xff;
  for (let i = 0; i < count; i++) {
    const b = bytes[from + i];
    if (b === skip) continue;
    for (let k = 0; k < 8; k++) if (((b >> (7 - k)) & 1) === bit) return i * 8 + k;
  }
  return bit === 1 ? -1 : count * 8;
}

/** BITPOS key bit [start [end [BYTE|BIT]]], with Redis 7.0's edge handling. */
const bitpos: Handler = ({ ks, now }, args) => {
  const b = parseInt64(args[2]);
  if (b === null) return NOT_INTEGER;
  if (b !== 0n && b !== 1n) return new ErrorReply('ERR The bit argument must be 1 or 0.');
  const bit: 0 | 1 = b === 1n ? 1 : 0;
  return withValue(ks.get(null, args[1], now), (v) => {
    if (v === null) return bit === 1 ? -1 : 0;
    let endGiven = false;
    let r: Range;
    if (args.length >= 4 && args.length <= 6) {
      const start = indexArg(args[3]);
      if (start === null) return NOT_INTEGER;
      let isBit = false;
      if (args.length === 6) {
        const unit = keyword(args[5]);
        if (unit === 'bit') isBit = true;
        else if (unit !== 'byte') return SYNTAX_ERROR;
      }
      let end: number;
      if (args.length >= 5) {
        const e = indexArg(args[4]);
        if (e === null) return NOT_INTEGER;
        end = e;
        endGiven = true;
      } else {
        end = isBit ? v.length * 8 + 7 : v.length - 1;
      }
      r = clampRange(start, end, v.length, isBit);
    } else if (args.length === 3) {
      r = { start: 0, end: v.length - 1, firstMask: 0, lastMask: 0 };
    } else {
      return SYNTAX_ERROR;
    }
    if (r.start > r.end) return -1;
    let { start } = r;
    let bytes = r.end - r.start + 1;
    let pos: number;
    const one = new Uint8Array(1);
    // Ported step by step from Redis 7.0 (bitops.c bitposCommand): the first masked byte, the
    // whole bytes between, the last masked byte; "result" is where Redis jumps on an early exit.
    result: {
      if (r.firstMask !== 0) {
        let t = bit === 1 ? v[start] & ~r.firstMask : v[start] | r.firstMask;
        if (r.lastMask !== 0 && bytes === 1) t = bit === 1 ? t & ~r.lastMask : t | r.lastMask;
        one[0] = t & 0xff;
        pos = firstBit(one, 0, 1, bit);
        if (bytes === 1 || (pos !== -1 && pos !== 8)) break result;
        start++;
        bytes--;
      }
      const whole = bytes - (r.lastMask !== 0 ? 1 : 0);
      if (whole > 0) {
        pos = firstBit(v, start, whole, bit);
        if (bytes === whole || (pos !== -1 && pos !== whole * 8)) break result;
        start += whole;
        bytes -= whole;
      }
      one[0] = (bit === 1 ? v[r.end] & ~r.lastMask : v[r.end] | r.lastMask) & 0xff;
      pos = firstBit(one, 0, 1, bit);
    }
    if (endGiven && bit === 0 && pos === bytes * 8) return -1;
    return pos === -1 ? -1 : pos + start * 8;
  });
};

export const bitmapCommands: CommandSpec[] = [
  defineCommand({
    name: 'setbit',
    group: 'bitmap',
    summary: 'Sets or clears the bit at offset in the string value stored at key',
    complexity: 'O(1)',
    since: '2.2.0',
    arity: 4,
    flags: ['write', 'denyoom'],
    categories: ['bitmap'],
    keys: [keyAt(1, ['RW', 'access', 'update'])],
    handler: setbit,
  }),
  defineCommand({
    name: 'getbit',
    group: 'bitmap',
    summary: 'Returns the bit value at offset in the string value stored at key',
    complexity: 'O(1)',
    since: '2.2.0',
    arity: 3,
    flags: ['readonly', 'fast'],
    categories: ['bitmap'],
    keys: [keyAt(1, ['RO', 'access'])],
    handler: getbit,
  }),
  defineCommand({
    name: 'bitcount',
    group: 'bitmap',
    summary: 'Count set bits in a string',
    complexity: 'O(N)',
    since: '2.6.0',
    arity: -2,
    flags: ['readonly'],
    categories: ['bitmap'],
    keys: [keyAt(1, ['RO', 'access'])],
    handler: bitcount,
  }),
  defineCommand({
    name: 'bitpos',
    group: 'bitmap',
    summary: 'Find first bit set or clear in a string',
    complexity: 'O(N)',
    since: '2.8.7',
    arity: -3,
    flags: ['readonly'],
    categories: ['bitmap'],
    keys: [keyAt(1, ['RO', 'access'])],
    handler: bitpos,
  }),
];
