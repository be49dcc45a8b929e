/** Plain blobs as Redis strings: whole values, batches, sizes and byte ranges. */
import { ErrorReply, OK, type Reply } from '../protocol/reply.js';
import { joinAcks, type Ack, type PendingValue } from '../storage/keyspace.js';
import { integerArg } from './args.js';
import { wrongArity } from './errors.js';
import { set } from './expiry.js';
import { afterAck, arrayReply, oneKey, type CommandSpec, type Handler } from './types.js';

const STRING = { group: 'string' } as const;

/** A reply computed from a value that may still be decoding; a promise stays a promise. */
function replyFrom(value: PendingValue | null, f: (v: Buffer | null) => Reply): Reply | Promise<Reply> {
  return value instanceof Promise ? value.then(f) : f(value);
}

const TOO_LARGE = new ErrorReply('ERR string exceeds maximum allowed size (proto-max-bulk-len)');

const getrange: Handler = ({ ks, now }, args) => {
  const start = integerArg(args[2]);
  const end = integerArg(args[3]);
  return replyFrom(ks.get(null, args[1], now), (v) => byteRange(v ?? EMPTY, start, end));
};

/** Redis' GETRANGE index rules: negative counts from the end, both ends inclusive, clamped. */
export function byteRange(v: Buffer, start: number, end: number): Buffer {
  if (start < 0 && end < 0 && start > end) return EMPTY;
  const len = v.length;
  let s = start < 0 ? len + start : start;
  let e = end < 0 ? len + end : end;
  if (s < 0) s = 0;
  if (e < 0) e = 0;
  if (e >= len) e = len - 1;
  if (len === 0 || s > e) return EMPTY;
  return v.subarray(s, e + 1);
}

const EMPTY = Buffer.alloc(0);

/** SETRANGE and APPEND change a value in place: the key keeps its TTL, as in Redis. */
const setrange: Handler = ({ ks, now }, args) => {
  const offset = integerArg(args[2]);
  if (offset < 0) return new ErrorReply('ERR offset is out of range');
  const patch = args[3];
  if (patch.length === 0) return ks.size(null, args[1], now);
  if (offset + patch.length > ks.maxValueBytes) return TOO_LARGE;
  const { value, ack } = ks.update(
    null,
    args[1],
    now,
    (old) => {
      const current = old ?? EMPTY;
      const out = Buffer.alloc(Math.max(current.length, offset + patch.length));
      current.copy(out);
      patch.copy(out, offset);
      return out;
    },
    'keep',
  );
  return afterAckLength(ack, value);
};

const append: Handler = ({ ks, now }, args) => {
  const tail = args[2];
  const size = ks.size(null, args[1], now);
  if (!(size instanceof Promise) && size + tail.length > ks.maxValueBytes) return TOO_LARGE;
  const { value, ack } = ks.update(null, args[1], now, (v) => (v === null ? Buffer.from(tail) : Buffer.concat([v, tail])), 'keep');
  return afterAckLength(ack, value);
};

/** The new length once the write is acknowledged and the new value is known. */
function afterAckLength(ack: Ack, next: PendingValue): Reply | Promise<Reply> {
  if (next instanceof Promise) return Promise.all([ack, next]).then(([, v]) => v.length);
  return afterAck(ack, next.length);
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
  {
    ...STRING,
    name: 'get',
    arity: 2,
    flags: ['readonly', 'fast'],
    keys: oneKey(['RO', 'access']),
    categories: ['read', 'string', 'fast'],
    summary: 'Returns the string value of a key.',
    since: '1.0.0',
    handler: ({ ks, now }, args) => ks.get(null, args[1], now),
  },
  {
    ...STRING,
    name: 'set',
    arity: -3,
    flags: ['write', 'denyoom'],
    keys: oneKey(['OW', 'update']),
    categories: ['write', 'string', 'slow'],
    summary: 'Sets the string value of a key, ignoring its type. The key is created if it doesn\'t exist.',
    since: '1.0.0',
    handler: set,
  },
  {
    ...STRING,
    name: 'mget',
    arity: -2,
    flags: ['readonly', 'fast'],
    keys: { first: 1, last: -1, step: 1, flags: ['RO', 'access'] },
    categories: ['read', 'string', 'fast'],
    tips: ['request_policy:multi_shard'],
    summary: 'Atomically returns the string values of one or more keys.',
    since: '1.0.0',
    handler: mget,
  },
  {
    ...STRING,
    name: 'mset',
    arity: -3,
    flags: ['write', 'denyoom'],
    keys: { first: 1, last: -1, step: 2, flags: ['OW', 'update'] },
    categories: ['write', 'string', 'slow'],
    tips: ['request_policy:multi_shard', 'response_policy:all_succeeded'],
    summary: 'Atomically creates or modifies the string values of one or more keys.',
    since: '1.0.1',
    handler: mset(false),
  },
  {
    ...STRING,
    name: 'msetnx',
    arity: -3,
    flags: ['write', 'denyoom'],
    keys: { first: 1, last: -1, step: 2, flags: ['OW', 'insert'] },
    categories: ['write', 'string', 'slow'],
    tips: ['request_policy:multi_shard', 'response_policy:agg_min'],
    summary: 'Atomically modifies the string values of one or more keys only when all keys don\'t exist.',
    since: '1.0.1',
    handler: mset(true),
  },
  {
    ...STRING,
    name: 'strlen',
    arity: 2,
    flags: ['readonly', 'fast'],
    keys: oneKey(['RO']),
    categories: ['read', 'string', 'fast'],
    summary: 'Returns the length of a string value.',
    since: '2.2.0',
    handler: ({ ks, now }, args) => ks.size(null, args[1], now),
  },
  {
    ...STRING,
    name: 'getrange',
    arity: 4,
    flags: ['readonly'],
    keys: oneKey(['RO', 'access']),
    categories: ['read', 'string', 'slow'],
    summary: 'Returns a substring of the string stored at a key.',
    since: '2.4.0',
    handler: getrange,
  },
  {
    ...STRING,
    name: 'setrange',
    arity: 4,
    flags: ['write', 'denyoom'],
    keys: oneKey(['RW', 'update']),
    categories: ['write', 'string', 'slow'],
    summary: 'Overwrites a part of a string value with another by an offset. Creates the key if it doesn\'t exist.',
    since: '2.2.0',
    handler: setrange,
  },
  {
    ...STRING,
    name: 'append',
    arity: 3,
    flags: ['write', 'denyoom', 'fast'],
    keys: oneKey(['RW', 'insert']),
    categories: ['write', 'string', 'fast'],
    summary: 'Appends a string to the value of a key. Creates the key if it doesn\'t exist.',
    since: '2.0.0',
    handler: append,
  },
];
