/**
 * Expiry: SET's options and the TTL command family, with Redis 7's parsing and error texts.
 * Times are epoch milliseconds throughout; an entry is absent from the millisecond it expires.
 */
import { ErrorReply, OK, type Reply } from '../protocol/reply.js';
import type { Ack, ExpiryPolicy, PendingValue } from '../storage/keyspace.js';
import { absoluteExpiry, ArgReader, readExpiryOption, SYNTAX_ERROR_TEXT, type ExpiryOption, type ExpiryUnit } from './args.js';
import { afterAck, CommandError, type CommandContext, type CommandSpec, type Handler } from './types.js';
import { defineCommand, keyAt } from './define.js';

/** The policy a parsed expiry option means for a write (SET, GETEX, SETEX). */
function policyOf(option: ExpiryOption, command: string, now: number): ExpiryPolicy {
  switch (option.kind) {
    case 'none':
      return 'clear';
    case 'keep':
      return 'keep';
    case 'persist':
      return 'clear';
    case 'at':
      return { at: absoluteExpiry(option.amount, option.unit, command, now, true) };
  }
}

/** The reply once the write is acknowledged; `value` read before the write may still be decoding. */
function valueAfter(ack: Ack, value: PendingValue | null): Reply | Promise<Reply> {
  return value instanceof Promise ? Promise.all([value, ack]).then(([v]) => v) : afterAck(ack, value);
}

/** SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL], options in any order. */
export const set: Handler = ({ ks, now }, args) => {
  // SET key value, the common case: no options to parse, so no reader or option objects per call.
  if (args.length === 3) return afterAck(ks.set(null, args[1], args[2], 'clear', now), OK);
  const r = new ArgReader(args, 3);
  let condition: 'nx' | 'xx' | null = null;
  let get = false;
  let expiry: ExpiryOption = { kind: 'none' };
  while (!r.done) {
    const opt = r.keyword();
    if ((opt === 'nx' || opt === 'xx') && (condition === null || condition === opt)) condition = opt;
    else if (opt === 'get') get = true;
    else {
      const next = readExpiryOption(opt, r, expiry, { keepttl: true });
      if (next === null) throw new CommandError(SYNTAX_ERROR_TEXT);
      expiry = next;
    }
  }
  const policy = policyOf(expiry, 'set', now);
  const key = args[1];
  const old = get ? ks.get(null, key, now) : null;
  // A plain SET needs no lookup: only NX and XX depend on whether the key exists.
  if (condition !== null && (condition === 'nx') === ks.exists(null, key, now)) return get ? old : null;
  const ack = ks.set(null, key, args[2], policy, now);
  // The old value was read before the write, so a promised (still decoding) one is still the old one.
  return get ? valueAfter(ack, old) : afterAck(ack, OK);
};

function setex(unit: 'ex' | 'px', command: string): Handler {
  return ({ ks, now }, args) => {
    const at = absoluteExpiry(args[2], unit, command, now, true);
    return afterAck(ks.set(null, args[1], args[3], { at }, now), OK);
  };
}

const setnx: Handler = ({ ks, now }, args) => {
  if (ks.exists(null, args[1], now)) return 0;
  return afterAck(ks.set(null, args[1], args[2], 'clear', now), 1);
};

const getdel: Handler = ({ ks, now }, args) => {
  const value = ks.get(null, args[1], now);
  if (value === null) return null;
  return valueAfter(ks.delete(null, args[1], now).ack, value);
};

/** GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST] */
const getex: Handler = ({ ks, now }, args) => {
  const r = new ArgReader(args, 2);
  let expiry: ExpiryOption = { kind: 'none' };
  while (!r.done) {
    const next = readExpiryOption(r.keyword(), r, expiry, { persist: true });
    if (next === null) throw new CommandError(SYNTAX_ERROR_TEXT);
    expiry = next;
  }
  const at = expiry.kind === 'at' ? absoluteExpiry(expiry.amount, expiry.unit, 'getex', now, true) : null;
  const value = ks.get(null, args[1], now);
  if (value === null) return null;
  let ack: Ack;
  if (expiry.kind === 'at') ack = ks.setExpiry(null, args[1], at, now);
  else if (expiry.kind === 'persist' && ks.expiry(null, args[1], now) !== null) ack = ks.setExpiry(null, args[1], null, now);
  return valueAfter(ack, value);
};

/** EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT key time [NX|XX|GT|LT] */
function expire(unit: ExpiryUnit, command: string): Handler {
  return ({ ks, now }, args) => {
    let nx = false;
    let xx = false;
    let gt = false;
    let lt = false;
    for (let i = 3; i < args.length; i++) {
      const opt = args[i].toString('latin1').toLowerCase();
      if (opt === 'nx') nx = true;
      else if (opt === 'xx') xx = true;
      else if (opt === 'gt') gt = true;
      else if (opt === 'lt') lt = true;
      else return new ErrorReply(`ERR Unsupported option ${args[i].toString('latin1')}`);
    }
    if (nx && (xx || gt || lt)) return new ErrorReply('ERR NX and XX, GT or LT options at the same time are not compatible');
    if (gt && lt) return new ErrorReply('ERR GT and LT options at the same time are not compatible');
    const at = absoluteExpiry(args[2], unit, command, now, false);
    const current = ks.expiry(null, args[1], now);
    if (current === undefined) return 0;
    // A key without an expiry counts as expiring never: GT never beats it, LT always does.
    if (nx && current !== null) return 0;
    if (xx && current === null) return 0;
    if (gt && (current === null || at <= current)) return 0;
    if (lt && current !== null && at >= current) return 0;
    return afterAck(ks.setExpiry(null, args[1], at, now), 1);
  };
}

/** TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 no key, -1 no expiry. */
export function ttlReply(at: number | null | undefined, unit: 'ms' | 's', absolute: boolean, now: number): number {
  if (at === undefined) return -2;
  if (at === null) return -1;
  if (absolute) return unit === 'ms' ? at : Math.floor(at / 1000);
  const left = Math.max(0, at - now);
  return unit === 'ms' ? left : Math.floor((left + 500) / 1000);
}

function ttl(unit: 'ms' | 's', absolute: boolean): Handler {
  return ({ ks, now }: CommandContext, args) => ttlReply(ks.expiry(null, args[1], now), unit, absolute, now);
}

const persist: Handler = ({ ks, now }, args) => {
  const at = ks.expiry(null, args[1], now);
  if (at === undefined || at === null) return 0;
  return afterAck(ks.setExpiry(null, args[1], null, now), 1);
};

export const expiryCommands: CommandSpec[] = [
  defineCommand({
    name: 'setex',
    group: 'string',
    summary: 'Set the value and expiration of a key',
    complexity: 'O(1)',
    since: '2.0.0',
    arity: 4,
    flags: ['write', 'denyoom'],
    categories: ['string'],
    keys: [keyAt(1, ['OW', 'update'])],
    handler: setex('ex', 'setex'),
  }),
  defineCommand({
    name: 'psetex',
    group: 'string',
    summary: 'Set the value and expiration in milliseconds of a key',
    complexity: 'O(1)',
    since: '2.6.0',
    arity: 4,
    flags: ['write', 'denyoom'],
    categories: ['string'],
    keys: [keyAt(1, ['OW', 'update'])],
    handler: setex('px', 'psetex'),
  }),
  defineCommand({
    name: 'setnx',
    group: 'string',
    summary: 'Set the value of a key, only if the key does not exist',
    complexity: 'O(1)',
    since: '1.0.0',
    arity: 3,
    flags: ['write', 'denyoom', 'fast'],
    categories: ['string'],
    keys: [keyAt(1, ['OW', 'insert'])],
    handler: setnx,
  }),
  defineCommand({
    name: 'getdel',
    group: 'string',
    summary: 'Get the value of a key and delete the key',
    complexity: 'O(1)',
    since: '6.2.0',
    arity: 2,
    flags: ['write', 'fast'],
    categories: ['string'],
    keys: [keyAt(1, ['RW', 'access', 'delete'])],
    handler: getdel,
  }),
  defineCommand({
    name: 'getex',
    group: 'string',
    summary: 'Get the value of a key and optionally set its expiration',
    complexity: 'O(1)',
    since: '6.2.0',
    arity: -2,
    flags: ['write', 'fast'],
    categories: ['string'],
    keys: [keyAt(1, ['RW', 'access', 'update'], { notes: 'RW and UPDATE because it changes the TTL' })],
    handler: getex,
  }),
  defineCommand({
    name: 'expire',
    group: 'generic',
    summary: 'Set a key\'s time to live in seconds',
    complexity: 'O(1)',
    since: '1.0.0',
    arity: -3,
    flags: ['write', 'fast'],
    categories: ['keyspace'],
    keys: [keyAt(1, ['RW', 'update'])],
    handler: expire('ex', 'expire'),
  }),
  defineCommand({
    name: 'pexpire',
    group: 'generic',
    summary: 'Set a key\'s time to live in milliseconds',
    complexity: 'O(1)',
    since: '2.6.0',
    arity: -3,
    flags: ['write', 'fast'],
    categories: ['keyspace'],
    keys: [keyAt(1, ['RW', 'update'])],
    handler: expire('px', 'pexpire'),
  }),
  defineCommand({
    name: 'expireat',
    group: 'generic',
    summary: 'Set the expiration for a key as a UNIX timestamp',
    complexity: 'O(1)',
    since: '1.2.0',
    arity: -3,
    flags: ['write', 'fast'],
    categories: ['keyspace'],
    keys: [keyAt(1, ['RW', 'update'])],
    handler: expire('exat', 'expireat'),
  }),
  defineCommand({
    name: 'pexpireat',
    group: 'generic',
    summary: 'Set the expiration for a key as a UNIX timestamp specified in milliseconds',
    complexity: 'O(1)',
    since: '2.6.0',
    arity: -3,
    flags: ['write', 'fast'],
    categories: ['keyspace'],
    keys: [keyAt(1, ['RW', 'update'])],
    handler: expire('pxat', 'pexpireat'),
  }),
  defineCommand({
    name: 'ttl',
    group: 'generic',
    summary: 'Get the time to live for a key in seconds',
    complexity: 'O(1)',
    since: '1.0.0',
    arity: 2,
    flags: ['readonly', 'fast'],
    categories: ['keyspace'],
    tips: ['nondeterministic_output'],
    keys: [keyAt(1, ['RO', 'access'])],
    handler: ttl('s', false),
  }),
  defineCommand({
    name: 'pttl',
    group: 'generic',
    summary: 'Get the time to live for a key in milliseconds',
    complexity: 'O(1)',
    since: '2.6.0',
    arity: 2,
    flags: ['readonly', 'fast'],
    categories: ['keyspace'],
    tips: ['nondeterministic_output'],
    keys: [keyAt(1, ['RO', 'access'])],
    handler: ttl('ms', false),
  }),
  defineCommand({
    name: 'expiretime',
    group: 'generic',
    summary: 'Get the expiration Unix timestamp for a key',
    complexity: 'O(1)',
    since: '7.0.0',
    arity: 2,
    flags: ['readonly', 'fast'],
    categories: ['keyspace'],
    keys: [keyAt(1, ['RO', 'access'])],
    handler: ttl('s', true),
  }),
  defineCommand({
    name: 'pexpiretime',
    group: 'generic',
    summary: 'Get the expiration Unix timestamp for a key in milliseconds',
    complexity: 'O(1)',
    since: '7.0.0',
    arity: 2,
    flags: ['readonly', 'fast'],
    categories: ['keyspace'],
    keys: [keyAt(1, ['RO', 'access'])],
    handler: ttl('ms', true),
  }),
  defineCommand({
    name: 'persist',
    group: 'generic',
    summary: 'Remove the expiration from a key',
    complexity: 'O(1)',
    since: '2.2.0',
    arity: 2,
    flags: ['write', 'fast'],
    categories: ['keyspace'],
    keys: [keyAt(1, ['RW', 'update'])],
    handler: persist,
  }),
];
