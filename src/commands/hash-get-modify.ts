/**
 * Redis 8's HGETDEL and HGETEX on namespace fields: read fields and, in the same command, delete
 * them or change their expiry. Values are read before the change, so a field named twice answers
 * once (HGETDEL) and a time already past deletes the field after answering (HGETEX), as in Redis.
 */
import { ErrorReply, type Reply } from '../protocol/reply.js';
import { joinAcks, type Ack } from '../storage/keyspace.js';
import { fieldExpiry, keyword, type ExpiryUnit } from './args.js';
import { defineCommand, keyAt } from './define.js';
import { parseFields } from './hash-expiry.js';
import { afterAck, arrayReply, type CommandSpec, type Handler } from './types.js';

/** HGETDEL key FIELDS numfields field… */
const hgetdel: Handler = ({ ks, now }, args) => {
  const fields = parseFields(args, 2);
  if (fields instanceof ErrorReply) return fields;
  const ns = args[1];
  const acks: Ack[] = [];
  const values = fields.map((field) => {
    const value = ks.get(ns, field, now);
    if (value !== null) acks.push(ks.delete(ns, field, now).ack);
    return value;
  });
  const reply = arrayReply(values);
  const ack = joinAcks(acks);
  return reply instanceof Promise ? Promise.all([reply, ack]).then(([r]) => r) : afterAck(ack, reply);
};

/** HGETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST] FIELDS numfields field… */
const hgetex: Handler = ({ ks, now }, args) => {
  const option = keyword(args[2]);
  let at: number | null | undefined; // undefined: no change; null: persist
  let fieldsAt = 2;
  if (option === 'ex' || option === 'px' || option === 'exat' || option === 'pxat') {
    at = fieldExpiry(args[3], option as ExpiryUnit, 'hgetex', now);
    fieldsAt = 4;
  } else if (option === 'persist') {
    at = null;
    fieldsAt = 3;
  }
  const fields = parseFields(args, fieldsAt);
  if (fields instanceof ErrorReply) return fields;
  const ns = args[1];
  const acks: Ack[] = [];
  const values: (Reply | Promise<Reply>)[] = fields.map((field) => {
    const value = ks.get(ns, field, now);
    if (value === null || at === undefined) return value;
    if (at === null) {
      if (ks.expiry(ns, field, now) !== null) acks.push(ks.setExpiry(ns, field, null, now));
    } else {
      acks.push(ks.setExpiry(ns, field, at, now));
    }
    return value;
  });
  const reply = arrayReply(values);
  const ack = joinAcks(acks);
  return reply instanceof Promise ? Promise.all([reply, ack]).then(([r]) => r) : afterAck(ack, reply);
};

/** Redis 7.0 has neither: the specs follow Redis 8.0's command JSON (hgetdel.json, hgetex.json). */
export const hashGetModifyCommands: CommandSpec[] = [
  defineCommand({
    name: 'hgetdel',
    group: 'hash',
    summary: 'Returns the value of a field and deletes it from the hash.',
    complexity: 'O(N) where N is the number of specified fields',
    since: '8.0.0',
    arity: -5,
    flags: ['write', 'fast'],
    categories: ['hash'],
    keys: [keyAt(1, ['RW', 'access', 'delete'])],
    fields: { keyword: 'FIELDS' },
    handler: hgetdel,
  }),
  defineCommand({
    name: 'hgetex',
    group: 'hash',
    summary: 'Get the value of one or more fields of a given hash key, and optionally set their expiration.',
    complexity: 'O(N) where N is the number of specified fields',
    since: '8.0.0',
    arity: -5,
    flags: ['write', 'fast'],
    categories: ['hash'],
    keys: [keyAt(1, ['RW', 'access', 'update'], { notes: 'RW and UPDATE because it changes the TTL' })],
    fields: { keyword: 'FIELDS' },
    handler: hgetex,
  }),
];
