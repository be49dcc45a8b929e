/**
 * Per-field expiry for namespaced blobs, with Redis 7.4's hash-field commands (HEXPIRE family,
 * HTTL family, HPERSIST) and Redis 8's HSETEX. Replies are per field, as Redis gives them:
 * -2 no such field, -1 no expiry, 0 condition not met, 1 done, 2 deleted (time already past).
 */
import { ErrorReply } from '../protocol/reply.js';
import { joinAcks, type Ack, type ExpiryPolicy } from '../storage/keyspace.js';
import { ArgReader, fieldExpiry, keyword, parseInteger, readExpiryOption, SYNTAX_ERROR_TEXT, type ExpiryOption, type ExpiryUnit } from './args.js';
import { ttlReply } from './expiry.js';
import { afterAck, CommandError, type CommandSpec, type Handler } from './types.js';
import { defineCommand, keyAt } from './define.js';

/** Parses `FIELDS numfields field…` starting at `at`; the fields, or Redis' error. */
export function parseFields(args: Buffer[], at: number, pairs = false): Buffer[] | ErrorReply {
  if (at >= args.length || keyword(args[at]) !== 'fields') {
    return new ErrorReply('ERR Mandatory argument FIELDS is missing or not at the right position');
  }
  const n = parseInteger(args[at + 1] ?? Buffer.alloc(0));
  if (n === null || n < 1) return new ErrorReply('ERR Number of fields must be a positive integer');
  if (n * (pairs ? 2 : 1) !== args.length - at - 2) {
    return new ErrorReply('ERR The `numfields` parameter must match the number of arguments');
  }
  return args.slice(at + 2);
}

function hexpire(unit: ExpiryUnit, command: string): Handler {
  return ({ ks, now }, args) => {
    const at = fieldExpiry(args[2], unit, command, now);
    let cond: string | null = null;
    let next = 3;
    const maybe = args[3] === undefined ? '' : keyword(args[3]);
    if (maybe === 'nx' || maybe === 'xx' || maybe === 'gt' || maybe === 'lt') {
      cond = maybe;
      next = 4;
    }
    const fields = parseFields(args, next);
    if (fields instanceof ErrorReply) return fields;
    const ns = args[1];
    const acks: Ack[] = [];
    const out: number[] = fields.map((field) => {
      const current = ks.expiry(ns, field, now);
      if (current === undefined) return -2;
      if (cond === 'nx' && current !== null) return 0;
      if (cond === 'xx' && current === null) return 0;
      if (cond === 'gt' && (current === null || at <= current)) return 0;
      if (cond === 'lt' && current !== null && at >= current) return 0;
      acks.push(ks.setExpiry(ns, field, at, now));
      return at <= now ? 2 : 1;
    });
    return afterAck(joinAcks(acks), out);
  };
}

function httl(unit: 'ms' | 's', absoluteTime: boolean): Handler {
  return ({ ks, now }, args) => {
    const fields = parseFields(args, 2);
    if (fields instanceof ErrorReply) return fields;
    return fields.map((field) => ttlReply(ks.expiry(args[1], field, now), unit, absoluteTime, now));
  };
}

const hpersist: Handler = ({ ks, now }, args) => {
  const fields = parseFields(args, 2);
  if (fields instanceof ErrorReply) return fields;
  const acks: Ack[] = [];
  const out = fields.map((field) => {
    const at = ks.expiry(args[1], field, now);
    if (at === undefined) return -2;
    if (at === null) return -1;
    acks.push(ks.setExpiry(args[1], field, null, now));
    return 1;
  });
  return afterAck(joinAcks(acks), out);
};

/** HSETEX key [FNX|FXX] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL] FIELDS n field value … (Redis 8). */
const hsetex: Handler = ({ ks, now }, args) => {
  let cond: 'fnx' | 'fxx' | null = null;
  let expiry: ExpiryOption = { kind: 'none' };
  const r = new ArgReader(args, 2);
  while (!r.done && r.peekKeyword() !== 'fields') {
    const opt = r.keyword();
    if ((opt === 'fnx' || opt === 'fxx') && cond === null) cond = opt;
    else {
      // Redis 8 refuses a repeated expiry option here, even the same one.
      const next: ExpiryOption | null = expiry.kind === 'none' ? readExpiryOption(opt, r, expiry, { keepttl: true }) : null;
      if (next === null) throw new CommandError(SYNTAX_ERROR_TEXT);
      expiry = next;
    }
  }
  const fields = parseFields(args, r.position, true);
  if (fields instanceof ErrorReply) return fields;
  let policy: ExpiryPolicy = 'clear';
  if (expiry.kind === 'keep') policy = 'keep';
  else if (expiry.kind === 'at') {
    const at = fieldExpiry(expiry.amount, expiry.unit, 'hsetex', now);
    if ((expiry.unit === 'ex' || expiry.unit === 'px') && parseInteger(expiry.amount) === 0) {
      return new ErrorReply("ERR invalid expire time in 'hsetex' command");
    }
    policy = { at };
  }
  const ns = args[1];
  const names = fields.filter((_, k) => k % 2 === 0);
  if (cond === 'fnx' && names.some((f) => ks.exists(ns, f, now))) return 0;
  if (cond === 'fxx' && !names.every((f) => ks.exists(ns, f, now))) return 0;
  const acks: Ack[] = [];
  for (let k = 0; k < fields.length; k += 2) {
    const field = fields[k];
    // A time already past deletes the field rather than writing it, as in Redis.
    const expiresAt = policy === 'keep' ? ks.expiry(ns, field, now) : typeof policy === 'object' ? policy.at : null;
    if (expiresAt !== null && expiresAt !== undefined && expiresAt <= now) acks.push(ks.delete(ns, field, now).ack);
    else acks.push(ks.set(ns, field, fields[k + 1], policy, now));
  }
  return afterAck(joinAcks(acks), 1);
};


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
