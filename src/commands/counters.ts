/**
 * Counters on blobs and on namespace fields: INCR family, INCRBYFLOAT, HINCRBY, HINCRBYFLOAT,
 * with Redis 7's parsing, overflow checks and error texts. A counter is a decimal value like any
 * other blob; it keeps its key's (or field's) TTL, as in Redis.
 */
import { ErrorReply, type Reply } from '../protocol/reply.js';
import { NOT_FLOAT_TEXT, NOT_INTEGER_TEXT, parseInt64 } from './args.js';
import { defineCommand, keyAt } from './define.js';
import { add, formatHuman, isFiniteExt, parseLongDouble, type ExtResult } from './long-double.js';
import { modify, type Step } from './modify.js';
import type { CommandSpec, Handler } from './types.js';

const LLONG_MAX = 2n ** 63n - 1n;
const LLONG_MIN = -(2n ** 63n);

const NOT_INTEGER = new ErrorReply(NOT_INTEGER_TEXT);
const NOT_FLOAT = new ErrorReply(NOT_FLOAT_TEXT);
const OVERFLOW = new ErrorReply('ERR increment or decrement would overflow');
const NAN_OR_INF = new ErrorReply('ERR increment would produce NaN or Infinity');

/** An integer reply: a number while exact, a bigint beyond 2^53. */
function integerReply(n: bigint): Reply {
  return n >= -9007199254740991n && n <= 9007199254740991n ? Number(n) : n;
}

/** old + by, or null when it leaves the signed 64-bit range (Redis' check, before adding). */
function addInt64(old: bigint, by: bigint): bigint | null {
  if ((by < 0n && old < 0n && by < LLONG_MIN - old) || (by > 0n && old > 0n && by > LLONG_MAX - old)) return null;
  return old + by;
}

/** The integer step shared by INCRBY and HINCRBY; `notInteger` is the stored value's error. */
function incrementStep(by: bigint, notInteger: ErrorReply): (current: Buffer | null) => Step {
  return (current) => {
    const old = current === null ? 0n : parseInt64(current);
    if (old === null) return notInteger;
    const next = addInt64(old, by);
    if (next === null) return OVERFLOW;
    return { write: Buffer.from(next.toString()), reply: integerReply(next) };
  };
}

function incrBy(sign: 1n | -1n, fixed: bigint | null): Handler {
  return ({ ks, now }, args) => {
    let by = fixed;
    if (by === null) {
      by = parseInt64(args[2]);
      if (by === null) return NOT_INTEGER;
      // Negating LLONG_MIN overflows (DECRBY only).
      if (sign === -1n && by === LLONG_MIN) return new ErrorReply('ERR decrement would overflow');
    }
    return modify(ks, null, args[1], now, incrementStep(sign * by, NOT_INTEGER));
  };
}

/** value + incr in long double, written as Redis writes it; both already parsed. */
function floatSum(value: ExtResult, incr: ExtResult): Step {
  const sum = add(value, incr);
  if (!isFiniteExt(sum)) return NAN_OR_INF;
  const text = Buffer.from(formatHuman(sum), 'latin1');
  return { write: text, reply: text };
}

const ZERO: ExtResult = { neg: false, m: 0n, e: 0 };

/** INCRBYFLOAT: the stored value is checked before the increment, as in Redis. */
const incrbyfloat: Handler = ({ ks, now }, args) =>
  modify(ks, null, args[1], now, (current) => {
    const value = current === null ? ZERO : parseLongDouble(current);
    if (value === null) return NOT_FLOAT;
    const incr = parseLongDouble(args[2]);
    if (incr === null) return NOT_FLOAT;
    return floatSum(value, incr);
  });

const hincrby: Handler = ({ ks, now }, args) => {
  const by = parseInt64(args[3]);
  if (by === null) return NOT_INTEGER;
  return modify(ks, args[1], args[2], now, incrementStep(by, new ErrorReply('ERR hash value is not an integer')));
};

/** HINCRBYFLOAT: the increment is checked first, and may not be infinite. */
const hincrbyfloat: Handler = ({ ks, now }, args) => {
  const incr = parseLongDouble(args[3]);
  if (incr === null) return NOT_FLOAT;
  if (!isFiniteExt(incr)) return new ErrorReply('ERR value is NaN or Infinity');
  return modify(ks, args[1], args[2], now, (current) => {
    const value = current === null ? ZERO : parseLongDouble(current);
    if (value === null) return new ErrorReply('ERR hash value is not a float');
    return floatSum(value, incr);
  });
};

const COUNTER = {
  complexity: 'O(1)',
  flags: ['write', 'denyoom', 'fast'],
  keys: [keyAt(1, ['RW', 'access', 'update'])],
} as const;

export const counterCommands: CommandSpec[] = [
  defineCommand({
    ...COUNTER,
    name: 'incr',
    group: 'string',
    summary: 'Increment the integer value of a key by one',
    since: '1.0.0',
    arity: 2,
    categories: ['string'],
    handler: incrBy(1n, 1n),
  }),
  defineCommand({
    ...COUNTER,
    name: 'decr',
    group: 'string',
    summary: 'Decrement the integer value of a key by one',
    since: '1.0.0',
    arity: 2,
    categories: ['string'],
    handler: incrBy(-1n, 1n),
  }),
  defineCommand({
    ...COUNTER,
    name: 'incrby',
    group: 'string',
    summary: 'Increment the integer value of a key by the given amount',
    since: '1.0.0',
    arity: 3,
    categories: ['string'],
    handler: incrBy(1n, null),
  }),
  defineCommand({
    ...COUNTER,
    name: 'decrby',
    group: 'string',
    summary: 'Decrement the integer value of a key by the given number',
    since: '1.0.0',
    arity: 3,
    categories: ['string'],
    handler: incrBy(-1n, null),
  }),
  defineCommand({
    ...COUNTER,
    name: 'incrbyfloat',
    group: 'string',
    summary: 'Increment the float value of a key by the given amount',
    since: '2.6.0',
    arity: 3,
    categories: ['string'],
    handler: incrbyfloat,
  }),
  defineCommand({
    ...COUNTER,
    name: 'hincrby',
    group: 'hash',
    summary: 'Increment the integer value of a hash field by the given number',
    since: '2.0.0',
    arity: 4,
    categories: ['hash'],
    fields: { first: 2, last: 2 },
    handler: hincrby,
  }),
  defineCommand({
    ...COUNTER,
    name: 'hincrbyfloat',
    group: 'hash',
    summary: 'Increment the float value of a hash field by the given amount',
    since: '2.6.0',
    arity: 4,
    categories: ['hash'],
    fields: { first: 2, last: 2 },
    handler: hincrbyfloat,
  }),
];
