/** Plain blobs as Redis strings: whole values, batches, sizes and byte ranges. */
import { ErrorReply, OK, PinnedBulk, StreamedBulk, type Reply } from '../protocol/reply.js';
import { joinAcks, ValueHandle, type Ack, type PendingValue } from '../storage/keyspace.js';
import { integerArg } from './args.js';
import { wrongArity } from './errors.js';
import { set } from './expiry.js';
import { defineCommand, keyAt } from './define.js';
import { afterAck, arrayReply, type CommandContext, type CommandSpec, type Handler } from './types.js';

const STRING = { group: 'string' } as const;

/** A reply computed from a value that may still be decoding; a promise stays a promise. */
function replyFrom(value: PendingValue | null, f: (v: Buffer | null) => Reply): Reply | Promise<Reply> {
  return value instanceof Promise ? value.then(f) : f(value);
}

const TOO_LARGE = new ErrorReply('ERR string exceeds maximum allowed size (proto-max-bulk-len)');

/**
 * GET and HGET: a value stored in chunks leaves as a stream, read chunk by chunk as the socket
 * drains; a large value in the read cache is written from the cache's memory, lent until the socket
 * has taken it. Inside EXEC the replies form one array, so there the value is read whole (up to the
 * keyspace's WHOLE_VALUE_MAX_BYTES).
 */
export function valueReply({ ks, client, now }: CommandContext, ns: Buffer | null, key: Buffer): Reply | Promise<Reply> {
  if (client.tx?.executing === true) return ks.get(ns, key, now);
  const v = ks.readForReply(ns, key, now);
  if (v instanceof ValueHandle) return new StreamedBulk(v.stream());
  if (v === null || v instanceof Promise || Buffer.isBuffer(v)) return v;
  return new PinnedBulk(v.pieces, v.length, v.release);
}

const getrange: Handler = ({ ks, now }, args) => {
  const start = integerArg(args[2]);
  const end = integerArg(args[3]);
  const v = ks.read(null, args[1], now);
  if (v instanceof ValueHandle) {
    // Only the chunks that cover the range are read.
    const [s, e] = rangeBounds(v.size, start, end);
    return v.range(s, e).finally(() => v.release());
  }
  return replyFrom(v, (b) => byteRange(b ?? EMPTY, start, end));
};

/** Redis' GETRANGE index rules: negative counts from the end, both ends inclusive, clamped; as [start, end). */
function rangeBounds(len: number, start: number, end: number): [number, number] {
  if (start < 0 && end < 0 && start > end) return [0, 0];
  let s = start < 0 ? len + start : start;
  let e = end < 0 ? len + end : end;
  if (s < 0) s = 0;
  if (e < 0) e = 0;
  if (e >= len) e = len - 1;
  if (len === 0 || s > e) return [0, 0];
  return [s, e + 1];
}

/** Redis' GETRANGE index rules: negative counts from the end, both ends inclusive, clamped. */
export function byteRange(v: Buffer, start: number, end: number): Buffer {
  const [s, e] = rangeBounds(v.length, start, end);
  return e === 0 ? EMPTY : v.subarray(s, e);
}

const EMPTY = Buffer.alloc(0);

/** SETRANGE and APPEND change a value in place: the key keeps its TTL, as in Redis. */
const setrange: Handler = ({ ks, now }, args) => {
  const offset = integerArg(args[2]);
  if (offset < 0) return new ErrorReply('ERR offset is out of range');
  const patch = args[3];
  if (patch.length === 0) return ks.size(null, args[1], now);
  if (offset + patch.length > ks.maxValueBytes) return TOO_LARGE;
  const { length, ack } = ks.setRange(null, args[1], offset, patch, now);
  return afterAckLength(ack, length);
};

const append: Handler = ({ ks, now }, args) => {
  const tail = args[2];
  const size = ks.size(null, args[1], now);
  if (!(size instanceof Promise) && size + tail.length > ks.maxValueBytes) return TOO_LARGE;
  const { length, ack } = ks.append(null, args[1], tail, now);
  return afterAckLength(ack, length);
};

/** The new length once the write is acknowledged and the new value is known. */
function afterAckLength(ack: Ack, length: number | Promise<number>): Reply | Promise<Reply> {
  if (length instanceof Promise) return Promise.all([ack, length]).then(([, n]) => n);
  return afterAck(ack, length);
}

const mget: Handler = ({ ks, now }, args) => arrayReply(args.slice(1).map((k) => ks.get(null, k, now)));

function mset(nx: boolean): Handler {
  return ({ ks, now }, args) => {
    if (args.length % 2 === 0) return wrongArity(nx ? 'msetnx' : 'mset');
    // Decided now, before any write: all of them happen or none does, as the client sees it.
    if (nx) for (let i = 1; i < args.length; i += 2) if (ks.exists(null, args[i], now)) return 0;
    const acks: Ack[] = [];
    for (let i = 1; i < args.length; i += 2) acks.push(ks.set(null, args[i], args[i + 1], 'clear', now));
    return afterAck(joinAcks(acks), nx ? 1 : OK);
  };
}

export const stringCommands: CommandSpec[] = [
  defineCommand({
    ...STRING,
    name: 'get',
    summary: 'Get the value of a key',
    complexity: 'O(1)',
    since: '1.0.0',
    arity: 2,
    flags: ['readonly', 'fast'],
    categories: ['string'],
    keys: [keyAt(1, ['RO', 'access'])],
    handler: (ctx, args) => valueReply(ctx, null, args[1]),
  }),
  defineCommand({
    ...STRING,
    name: 'set',
    summary: 'Set the string value of a key',
    complexity: 'O(1)',
    since: '1.0.0',
    arity: -3,
    flags: ['write', 'denyoom'],
    categories: ['string'],
    keys: [keyAt(1, ['RW', 'access', 'update', 'variable_flags'], { notes: 'RW and ACCESS due to the optional `GET` argument' })],
    handler: set,
  }),
  defineCommand({
    ...STRING,
    name: 'mget',
    summary: 'Get the values of all the given keys',
    complexity: 'O(N) where N is the number of keys to retrieve.',
    since: '1.0.0',
    arity: -2,
    flags: ['readonly', 'fast'],
    categories: ['string'],
    tips: ['request_policy:multi_shard'],
    keys: [keyAt(1, ['RO', 'access'], { lastkey: -1 })],
    handler: mget,
  }),
  defineCommand({
    ...STRING,
    name: 'mset',
    summary: 'Set multiple keys to multiple values',
    complexity: 'O(N) where N is the number of keys to set.',
    since: '1.0.1',
    arity: -3,
    flags: ['write', 'denyoom'],
    categories: ['string'],
    tips: ['request_policy:multi_shard', 'response_policy:all_succeeded'],
    keys: [keyAt(1, ['OW', 'update'], { lastkey: -1, keystep: 2 })],
    handler: mset(false),
  }),
  defineCommand({
    ...STRING,
    name: 'msetnx',
    summary: 'Set multiple keys to multiple values, only if none of the keys exist',
    complexity: 'O(N) where N is the number of keys to set.',
    since: '1.0.1',
    arity: -3,
    flags: ['write', 'denyoom'],
    categories: ['string'],
    tips: ['request_policy:multi_shard', 'response_policy:agg_min'],
    keys: [keyAt(1, ['OW', 'insert'], { lastkey: -1, keystep: 2 })],
    handler: mset(true),
  }),
  defineCommand({
    ...STRING,
    name: 'strlen',
    summary: 'Get the length of the value stored in a key',
    complexity: 'O(1)',
    since: '2.2.0',
    arity: 2,
    flags: ['readonly', 'fast'],
    categories: ['string'],
    keys: [keyAt(1, ['RO'])],
    handler: ({ ks, now }, args) => ks.size(null, args[1], now),
  }),
  defineCommand({
    ...STRING,
    name: 'getrange',
    summary: 'Get a substring of the string stored at a key',
    complexity:
      'O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.',
    since: '2.4.0',
    arity: 4,
    flags: ['readonly'],
    categories: ['string'],
    keys: [keyAt(1, ['RO', 'access'])],
    handler: getrange,
  }),
  defineCommand({
    ...STRING,
    name: 'setrange',
    summary: 'Overwrite part of a string at key starting at the specified offset',
    complexity:
      'O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument.',
    since: '2.2.0',
    arity: 4,
    flags: ['write', 'denyoom'],
    categories: ['string'],
    keys: [keyAt(1, ['RW', 'update'])],
    handler: setrange,
  }),
  defineCommand({
    ...STRING,
    name: 'append',
    summary: 'Append a value to a key',
    complexity:
      'O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by Redis will double the free space available on every reallocation.',
    since: '2.0.0',
    arity: 3,
    flags: ['write', 'denyoom', 'fast'],
    categories: ['string'],
    keys: [keyAt(1, ['RW', 'insert'])],
    handler: append,
  }),
];
