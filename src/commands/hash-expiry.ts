/**
 * Per-field expiry for namespaced blobs, with Redis 7.4's hash-field commands (HEXPIRE family,
 * HTTL family, HPERSIST) and Redis 8's HSETEX. Replies are per field, as Redis gives them:
 * -2 no such field, -1 no expiry, 0 condition not met, 1 done, 2 deleted (time already past).
 */
import { ErrorReply } from '../protocol/reply.js';
import type { Ack, Store } from '../storage/store.js';
import { joinAcks } from '../storage/store.js';
import { NOT_INTEGER, parseInteger, SYNTAX_ERROR } from './errors.js';
import { defineCommand, keyAt } from './define.js';
import { afterAck, type CommandSpec, type Handler } from './types.js';

/** Redis' HFE_MAX_ABS_TIME_MSEC: field expiries are kept in 48 bits, shifted. */
const MAX_ABS_MS = 70368744177663;

/** Parses `FIELDS numfields field…` starting at `at`; the fields, or Redis' error. */
function parseFields(args: Buffer[], at: number, pairs = false): Buffer[] | ErrorReply {
  if (at >= args.length || args[at].toString('latin1').toLowerCase() !== 'fields') {
    return new ErrorReply('ERR Mandatory argument FIELDS is missing or not at the right position');
  }
  const n = parseInteger(args[at + 1] ?? Buffer.alloc(0));
  if (n === null || n < 1) return new ErrorReply('ERR Number of fields must be a positive integer');
  if (n * (pairs ? 2 : 1) !== args.length - at - 2) {
    return new ErrorReply('ERR The `numfields` parameter must match the number of arguments');
  }
  return args.slice(at + 2);
}

type Unit = 'ex' | 'px' | 'exat' | 'pxat';

function absolute(arg: Buffer, unit: Unit, command: string): number | ErrorReply {
  const n = parseInteger(arg);
  if (n === null) return NOT_INTEGER;
  if (n < 0) return new ErrorReply('ERR invalid expire time, must be >= 0');
  const ms = unit === 'ex' || unit === 'exat' ? n * 1000 : n;
  const at = unit === 'ex' || unit === 'px' ? ms + Date.now() : ms;
  if (ms > MAX_ABS_MS || at > MAX_ABS_MS) return new ErrorReply(`ERR invalid expire time in '${command}' command`);
  return at;
}

function hexpire(unit: Unit, command: string): Handler {
  return ({ store }, args) => {
    const at = absolute(args[2], unit, command);
    if (at instanceof ErrorReply) return at;
    let cond: string | null = null;
    let next = 3;
    const maybe = args[3]?.toString('latin1').toLowerCase();
    if (maybe === 'nx' || maybe === 'xx' || maybe === 'gt' || maybe === 'lt') {
      cond = maybe;
      next = 4;
    }
    const fields = parseFields(args, next);
    if (fields instanceof ErrorReply) return fields;
    const ns = args[1];
    const acks: Ack[] = [];
    const out: number[] = fields.map((field) => {
      const current = store.expiryOf(ns, field);
      if (current === undefined) return -2;
      if (cond === 'nx' && current !== null) return 0;
      if (cond === 'xx' && current === null) return 0;
      if (cond === 'gt' && (current === null || at <= current)) return 0;
      if (cond === 'lt' && current !== null && at >= current) return 0;
      const past = at <= Date.now();
      acks.push(store.expireAt(ns, field, at));
      return past ? 2 : 1;
    });
    return afterAck(joinAcks(acks), out);
  };
}

function httl(unit: 'ms' | 's', absoluteTime: boolean): Handler {
  return ({ store }, args) => {
    const fields = parseFields(args, 2);
    if (fields instanceof ErrorReply) return fields;
    const now = Date.now();
    return fields.map((field) => {
      const at = store.expiryOf(args[1], field);
      if (at === undefined) return -2;
      if (at === null) return -1;
      if (absoluteTime) return unit === 'ms' ? at : Math.floor(at / 1000);
      const left = Math.max(0, at - now);
      return unit === 'ms' ? left : Math.floor((left + 500) / 1000);
    });
  };
}

const hpersist: Handler = ({ store }, args) => {
  const fields = parseFields(args, 2);
  if (fields instanceof ErrorReply) return fields;
  const acks: Ack[] = [];
  const out = fields.map((field) => {
    const at = store.expiryOf(args[1], field);
    if (at === undefined) return -2;
    if (at === null) return -1;
    acks.push(store.expireAt(args[1], field, null));
    return 1;
  });
  return afterAck(joinAcks(acks), out);
};

/** HSETEX key [FNX|FXX] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL] FIELDS n field value … (Redis 8). */
const hsetex: Handler = ({ store }, args) => {
  let cond: 'fnx' | 'fxx' | null = null;
  let expiry: { unit: Unit; arg: Buffer } | null = null;
  let keepTtl = false;
  let i = 2;
  for (; i < args.length; i++) {
    const opt = args[i].toString('latin1').toLowerCase();
    if (opt === 'fields') break;
    if ((opt === 'fnx' || opt === 'fxx') && cond === null) cond = opt;
    else if (opt === 'keepttl' && expiry === null && !keepTtl) keepTtl = true;
    else if ((opt === 'ex' || opt === 'px' || opt === 'exat' || opt === 'pxat') && expiry === null && !keepTtl && i + 1 < args.length) {
      expiry = { unit: opt, arg: args[++i] };
    } else return SYNTAX_ERROR;
  }
  const fields = parseFields(args, i, true);
  if (fields instanceof ErrorReply) return fields;
  let at: number | null = null;
  if (expiry !== null) {
    const parsed = absolute(expiry.arg, expiry.unit, 'hsetex');
    if (parsed instanceof ErrorReply) return parsed;
    if (expiry.unit === 'ex' || expiry.unit === 'px') {
      if (parseInteger(expiry.arg) === 0) return new ErrorReply("ERR invalid expire time in 'hsetex' command");
    }
    at = parsed;
  }
  const ns = args[1];
  const names = fields.filter((_, k) => k % 2 === 0);
  if (cond === 'fnx' && names.some((f) => store.hexists(ns, f))) return 0;
  if (cond === 'fxx' && !names.every((f) => store.hexists(ns, f))) return 0;
  const acks: Ack[] = [];
  for (let k = 0; k < fields.length; k += 2) {
    const field = fields[k];
    const ttl = keepTtl ? (store.expiryOf(ns, field) ?? null) : at;
    acks.push(ttl !== null && ttl <= Date.now() ? deleteIfPresent(store, ns, field) : store.hset(ns, field, fields[k + 1], ttl));
  }
  return afterAck(joinAcks(acks), 1);
};

function deleteIfPresent(store: Store, ns: Buffer, field: Buffer): Ack {
  return store.hexists(ns, field) ? store.hdelete(ns, field) : undefined;
}

/**
 * Redis 7.0 has none of these; their specs follow the newer Redis' command JSON (src/commands/*.json:
 * 7.4.0 for the HEXPIRE/HTTL family and HPERSIST, 8.0 for HSETEX).
 */
export const hashExpiryCommands: CommandSpec[] = [
  defineCommand({
    name: 'hexpire',
    group: 'hash',
    summary: 'Set expiry for hash field using relative time to expire (seconds)',
    complexity: 'O(N) where N is the number of specified fields',
    since: '7.4.0',
    arity: -6,
    flags: ['write', 'denyoom', 'fast'],
    categories: ['hash'],
    keys: [keyAt(1, ['RW', 'update'])],
    fields: { keyword: 'FIELDS' },
    handler: hexpire('ex', 'hexpire'),
  }),
  defineCommand({
    name: 'hpexpire',
    group: 'hash',
    summary: 'Set expiry for hash field using relative time to expire (milliseconds)',
    complexity: 'O(N) where N is the number of specified fields',
    since: '7.4.0',
    arity: -6,
    flags: ['write', 'denyoom', 'fast'],
    categories: ['hash'],
    keys: [keyAt(1, ['RW', 'update'])],
    fields: { keyword: 'FIELDS' },
    handler: hexpire('px', 'hpexpire'),
  }),
  defineCommand({
    name: 'hexpireat',
    group: 'hash',
    summary: 'Set expiry for hash field using an absolute Unix timestamp (seconds)',
    complexity: 'O(N) where N is the number of specified fields',
    since: '7.4.0',
    arity: -6,
    flags: ['write', 'denyoom', 'fast'],
    categories: ['hash'],
    keys: [keyAt(1, ['RW', 'update'])],
    fields: { keyword: 'FIELDS' },
    handler: hexpire('exat', 'hexpireat'),
  }),
  defineCommand({
    name: 'hpexpireat',
    group: 'hash',
    summary: 'Set expiry for hash field using an absolute Unix timestamp (milliseconds)',
    complexity: 'O(N) where N is the number of specified fields',
    since: '7.4.0',
    arity: -6,
    flags: ['write', 'denyoom', 'fast'],
    categories: ['hash'],
    keys: [keyAt(1, ['RW', 'update'])],
    fields: { keyword: 'FIELDS' },
    handler: hexpire('pxat', 'hpexpireat'),
  }),
  defineCommand({
    name: 'httl',
    group: 'hash',
    summary: 'Returns the TTL in seconds of a hash field.',
    complexity: 'O(N) where N is the number of specified fields',
    since: '7.4.0',
    arity: -5,
    flags: ['readonly', 'fast'],
    categories: ['hash'],
    keys: [keyAt(1, ['RO', 'access'])],
    fields: { keyword: 'FIELDS' },
    handler: httl('s', false),
  }),
  defineCommand({
    name: 'hpttl',
    group: 'hash',
    summary: 'Returns the TTL in milliseconds of a hash field.',
    complexity: 'O(N) where N is the number of specified fields',
    since: '7.4.0',
    arity: -5,
    flags: ['readonly', 'fast'],
    categories: ['hash'],
    keys: [keyAt(1, ['RO', 'access'])],
    fields: { keyword: 'FIELDS' },
    handler: httl('ms', false),
  }),
  defineCommand({
    name: 'hexpiretime',
    group: 'hash',
    summary: 'Returns the expiration time of a hash field as a Unix timestamp, in seconds.',
    complexity: 'O(N) where N is the number of specified fields',
    since: '7.4.0',
    arity: -5,
    flags: ['readonly', 'fast'],
    categories: ['hash'],
    keys: [keyAt(1, ['RO', 'access'])],
    fields: { keyword: 'FIELDS' },
    handler: httl('s', true),
  }),
  defineCommand({
    name: 'hpexpiretime',
    group: 'hash',
    summary: 'Returns the expiration time of a hash field as a Unix timestamp, in msec.',
    complexity: 'O(N) where N is the number of specified fields',
    since: '7.4.0',
    arity: -5,
    flags: ['readonly', 'fast'],
    categories: ['hash'],
    keys: [keyAt(1, ['RO', 'access'])],
    fields: { keyword: 'FIELDS' },
    handler: httl('ms', true),
  }),
  defineCommand({
    name: 'hpersist',
    group: 'hash',
    summary: 'Removes the expiration time for each specified field',
    complexity: 'O(N) where N is the number of specified fields',
    since: '7.4.0',
    arity: -5,
    flags: ['write', 'fast'],
    categories: ['hash'],
    keys: [keyAt(1, ['RW', 'update'])],
    fields: { keyword: 'FIELDS' },
    handler: hpersist,
  }),
  defineCommand({
    name: 'hsetex',
    group: 'hash',
    summary: 'Set the value of one or more fields of a given hash key, and optionally set their expiration.',
    complexity: 'O(N) where N is the number of fields being set.',
    since: '8.0.0',
    arity: -6,
    flags: ['write', 'denyoom', 'fast'],
    categories: ['hash'],
    keys: [keyAt(1, ['RW', 'update'])],
    fields: { keyword: 'FIELDS', step: 2 },
    handler: hsetex,
  }),
];
