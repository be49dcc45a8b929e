/** Plain blobs as Redis strings: whole values, batches, sizes and byte ranges. */
import { ErrorReply, OK, type Reply } from '../protocol/reply.js';
import type { PendingValue } from '../storage/overlay.js';
import { joinAcks, type Ack } from '../storage/store.js';
import { NOT_INTEGER, parseInteger, wrongArity } from './errors.js';
import { set } from './expiry.js';
import { afterAck, arrayReply, oneKey, type CommandSpec, type Handler } from './types.js';

const STRING = { group: 'string' } as const;
/** Applies `f` to a value that may still be decoding; a promise stays a promise. */
function mapValue<T>(value: PendingValue | null, f: (v: Buffer | null) => T): T | Promise<T> {
  return value instanceof Promise ? value.then(f) : f(value);
}

/** A reply computed from a value that may be a promise. */
function replyFrom(value: PendingValue | null, f: (v: Buffer | null) => Reply): Reply | Promise<Reply> {
  return mapValue(value, f);
}

const getrange: Handler = ({ store }, args) => {
  const start = parseInteger(args[2]);
  const end = parseInteger(args[3]);
  if (start === null || end === null) return NOT_INTEGER;
  return replyFrom(store.get(args[1]), (v) => byteRange(v ?? EMPTY, start, end));
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

const setrange: Handler = ({ store }, args) => {
  const offset = parseInteger(args[2]);
  if (offset === null) return NOT_INTEGER;
  if (offset < 0) return new ErrorReply('ERR offset is out of range');
  const patch = args[3];
  const current = store.get(args[1]);
  if (patch.length === 0) return mapValue(current, (v) => v?.length ?? 0);
  if (offset + patch.length > store.maxValueBytes) {
    return new ErrorReply('ERR string exceeds maximum allowed size (proto-max-bulk-len)');
  }
  const next = mapValue(current, (v) => {
    const old = v ?? EMPTY;
    const out = Buffer.alloc(Math.max(old.length, offset + patch.length));
    old.copy(out);
    patch.copy(out, offset);
    return out;
  });
  return afterAckValue(store.set(args[1], next), next);
};

const append: Handler = ({ store }, args) => {
  const tail = args[2];
  const current = store.get(args[1]);
  if (!(current instanceof Promise) && (current?.length ?? 0) + tail.length > store.maxValueBytes) {
    return new ErrorReply('ERR string exceeds maximum allowed size (proto-max-bulk-len)');
  }
  const next = mapValue(current, (v) => (v === null ? Buffer.from(tail) : Buffer.concat([v, tail])));
  return afterAckValue(store.set(args[1], next), next);
};

/** The new length once the write is acknowledged and the new value is known. */
function afterAckValue(ack: Ack, next: PendingValue): Reply | Promise<Reply> {
  if (next instanceof Promise) return Promise.all([ack, next]).then(([, v]) => v.length);
  return afterAck(ack, next.length);
}

const mget: Handler = ({ store }, args) => {
  const values = args.slice(1).map((k) => store.get(k));
  return arrayReply(values);
};

function mset(nx: boolean): Handler {
  return ({ store }, args) => {
    if (args.length % 2 === 0) return wrongArity(nx ? 'msetnx' : 'mset');
    // Decided now, before any write: all of them happen or none does, as the client sees it.
    if (nx) for (let i = 1; i < args.length; i += 2) if (store.exists(args[i])) return 0;
    const acks: Ack[] = [];
    for (let i = 1; i < args.length; i += 2) acks.push(store.set(args[i], args[i + 1]));
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
    handler: ({ store }, args) => store.get(args[1]),
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
    handler: ({ store }, args) => store.size(null, args[1]),
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
