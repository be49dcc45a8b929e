/**
 * Expiry: SET's options and the TTL command family, with Redis 7's parsing and error texts.
 * Times are epoch milliseconds throughout; an entry is absent from the millisecond it expires.
 */
import { ErrorReply, OK } from '../protocol/reply.js';
import type { Ack, Store } from '../storage/store.js';
import { NOT_INTEGER, SYNTAX_ERROR } from './errors.js';
import { defineCommand, keyAt } from './define.js';
import { afterAck, type CommandSpec, type Handler } from './types.js';

/** Redis keeps expiries in a signed 64-bit millisecond count; so do we, within what a double holds exactly. */
const MAX_MS = Number.MAX_SAFE_INTEGER;

function invalidExpire(command: string): ErrorReply {
  return new ErrorReply(`ERR invalid expire time in '${command}' command`);
}

/** Parses a signed 64-bit integer as Redis does; null when it is not one. */
function parseInt64(arg: Buffer): bigint | null {
  const s = arg.toString('latin1');
  if (!/^-?(0|[1-9][0-9]*)$/.test(s)) return null;
  const n = BigInt(s);
  return n >= -(2n ** 63n) && n <= 2n ** 63n - 1n ? n : null;
}

type ExpireUnit = 'ex' | 'px' | 'exat' | 'pxat';

/**
 * The absolute expiry in ms for `amount` in `unit`, or an error reply. Relative times must be
 * positive (SET, SETEX, GETEX); the EXPIRE family allows any value and handles the past itself.
 */
function absoluteExpiry(arg: Buffer, unit: ExpireUnit, command: string, mustBePositive: boolean): number | ErrorReply {
  const n = parseInt64(arg);
  if (n === null) return NOT_INTEGER;
  if (mustBePositive && n <= 0n) return invalidExpire(command);
  const ms = unit === 'ex' || unit === 'exat' ? n * 1000n : n;
  const at = unit === 'ex' || unit === 'px' ? ms + BigInt(Date.now()) : ms;
  if (ms / 1000n > BigInt(MAX_MS) / 1000n || at > BigInt(MAX_MS) || at < -BigInt(MAX_MS)) return invalidExpire(command);
  return Number(at);
}

interface SetOptions {
  condition: 'nx' | 'xx' | null;
  get: boolean;
  /** Absolute expiry in ms, null for none, 'keep' for KEEPTTL. */
  expiresAt: number | null | 'keep';
}

/** SET's options, in any order: [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]. */
function parseSetOptions(args: Buffer[], from: number): SetOptions | ErrorReply {
  const opts: SetOptions = { condition: null, get: false, expiresAt: null };
  let expiry: { unit: ExpireUnit; arg: Buffer } | null = null;
  let keepTtl = false;
  for (let i = from; i < args.length; i++) {
    const opt = args[i].toString('latin1').toLowerCase();
    if ((opt === 'nx' || opt === 'xx') && (opts.condition === null || opts.condition === opt)) {
      opts.condition = opt;
    } else if (opt === 'get') {
      opts.get = true;
    } else if (opt === 'keepttl' && expiry === null) {
      keepTtl = true;
    } else if ((opt === 'ex' || opt === 'px' || opt === 'exat' || opt === 'pxat') && !keepTtl && (expiry === null || expiry.unit === opt) && i + 1 < args.length) {
      expiry = { unit: opt, arg: args[++i] };
    } else {
      return SYNTAX_ERROR;
    }
  }
  if (keepTtl) opts.expiresAt = 'keep';
  if (expiry !== null) {
    const at = absoluteExpiry(expiry.arg, expiry.unit, 'set', true);
    if (at instanceof ErrorReply) return at;
    opts.expiresAt = at;
  }
  return opts;
}

/** Writes a value with SET's semantics; returns the ack, or null when NX/XX stopped it. */
function setWith(store: Store, key: Buffer, value: Buffer, opts: SetOptions): Ack | null {
  // A plain SET needs no lookup: only NX and XX depend on whether the key exists.
  if (opts.condition !== null) {
    const exists = store.exists(key);
    if ((opts.condition === 'nx' && exists) || (opts.condition === 'xx' && !exists)) return null;
  }
  const expiresAt = opts.expiresAt === 'keep' ? (store.expiryOf(null, key) ?? null) : opts.expiresAt;
  return store.set(key, value, expiresAt) ?? undefined;
}

export const set: Handler = ({ store }, args) => {
  const opts = parseSetOptions(args, 3);
  if (opts instanceof ErrorReply) return opts;
  const old = opts.get ? store.get(args[1]) : null;
  const ack = setWith(store, args[1], args[2], opts);
  if (opts.get) {
    // The old value was read before the write, so a promised (still decoding) one is still the old one.
    return old instanceof Promise ? Promise.all([old, ack ?? undefined]).then(([v]) => v) : afterAck(ack ?? undefined, old);
  }
  return ack === null ? null : afterAck(ack, OK);
};

function setex(unit: 'ex' | 'px', command: string): Handler {
  return ({ store }, args) => {
    const at = absoluteExpiry(args[2], unit, command, true);
    if (at instanceof ErrorReply) return at;
    return afterAck(store.set(args[1], args[3], at), OK);
  };
}

const setnx: Handler = ({ store }, args) => {
  if (store.exists(args[1])) return 0;
  return afterAck(store.set(args[1], args[2]), 1);
};

const getdel: Handler = ({ store }, args) => {
  const value = store.get(args[1]);
  if (value === null) return null;
  const ack = store.delete(args[1]);
  return value instanceof Promise ? Promise.all([value, ack]).then(([v]) => v) : afterAck(ack, value);
};

/** GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST] */
const getex: Handler = ({ store }, args) => {
  let expiry: { unit: ExpireUnit; arg: Buffer } | null = null;
  let persist = false;
  for (let i = 2; i < args.length; i++) {
    const opt = args[i].toString('latin1').toLowerCase();
    if ((opt === 'ex' || opt === 'px' || opt === 'exat' || opt === 'pxat') && expiry === null && !persist && i + 1 < args.length) {
      expiry = { unit: opt, arg: args[++i] };
    } else if (opt === 'persist' && expiry === null && !persist) {
      persist = true;
    } else {
      return SYNTAX_ERROR;
    }
  }
  let at: number | null = null;
  if (expiry !== null) {
    const parsed = absoluteExpiry(expiry.arg, expiry.unit, 'getex', true);
    if (parsed instanceof ErrorReply) return parsed;
    at = parsed;
  }
  const value = store.get(args[1]);
  if (value === null) return null;
  let ack: Ack;
  if (expiry !== null) ack = store.expireAt(null, args[1], at);
  else if (persist && store.expiryOf(null, args[1]) !== null) ack = store.expireAt(null, args[1], null);
  return value instanceof Promise ? Promise.all([value, ack]).then(([v]) => v) : afterAck(ack, value);
};

/** EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT key time [NX|XX|GT|LT] */
function expire(unit: ExpireUnit, command: string): Handler {
  return ({ store }, args) => {
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
    const at = absoluteExpiry(args[2], unit, command, false);
    if (at instanceof ErrorReply) return at;
    const current = store.expiryOf(null, args[1]);
    if (current === undefined) return 0;
    // A key without an expiry counts as expiring never: GT never beats it, LT always does.
    if (nx && current !== null) return 0;
    if (xx && current === null) return 0;
    if (gt && (current === null || at <= current)) return 0;
    if (lt && current !== null && at >= current) return 0;
    return afterAck(store.expireAt(null, args[1], at), 1);
  };
}

function ttl(unit: 'ms' | 's', absolute: boolean): Handler {
  return ({ store }, args) => {
    const at = store.expiryOf(null, args[1]);
    if (at === undefined) return -2;
    if (at === null) return -1;
    if (absolute) return unit === 'ms' ? at : Math.floor(at / 1000);
    const left = Math.max(0, at - Date.now());
    return unit === 'ms' ? left : Math.floor((left + 500) / 1000);
  };
}

const persist: Handler = ({ store }, args) => {
  const at = store.expiryOf(null, args[1]);
  if (at === undefined || at === null) return 0;
  return afterAck(store.expireAt(null, args[1], null), 1);
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
