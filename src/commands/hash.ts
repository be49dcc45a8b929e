/**
 * Namespaced blobs through the hash commands: `HSET ns field value` stores a blob `field` in the
 * namespace `ns`. Namespaces live beside the plain key space; `SET x` and `HSET x f v` coexist.
 * A namespace's fields are spread over every shard, so whole-namespace reads gather from all.
 */
import { ErrorReply, OK, RespMap, type Reply } from '../protocol/reply.js';
import { FIELD_SCAN_START, joinAcks, type Ack, type FieldScanPosition, type FieldValue, type Keyspace } from '../storage/keyspace.js';
import { integerArg, keyword } from './args.js';
import { CursorRegistry } from './cursors.js';
import { SYNTAX_ERROR, wrongArity } from './errors.js';
import { globMatch } from './glob.js';
import { parseScanOptions } from './keys.js';
import { afterAck, arrayReply, oneKey, type CommandContext, type CommandSpec, type Handler } from './types.js';

const HASH = { group: 'hash' } as const;

/** HSET / HMSET: writes each pair (a field loses any expiry it had); returns how many fields are new. */
function hsetPairs({ ks, now }: CommandContext, args: Buffer[], from: number): { added: number; ack: Ack } {
  const ns = args[1];
  let added = 0;
  const acks: Ack[] = [];
  for (let i = from; i < args.length; i += 2) {
    if (!ks.exists(ns, args[i], now)) added++;
    acks.push(ks.set(ns, args[i], args[i + 1], 'clear', now));
  }
  return { added, ack: joinAcks(acks) };
}

/** Resolves the values of gathered fields, staying synchronous when none is still decoding. */
function settle<T>(items: FieldValue[], build: (values: (Buffer | null)[]) => T): T | Promise<T> {
  const values = items.map((f) => f.value);
  if (values.some((v) => v instanceof Promise)) return Promise.all(values).then(build);
  return build(values as (Buffer | null)[]);
}

/** Field/value pairs as Redis sends them: a map in RESP3, a flat array in RESP2. */
function pairs(ctx: CommandContext, items: FieldValue[]): Reply | Promise<Reply> {
  return settle(items, (values) =>
    ctx.client.proto === 3
      ? new RespMap(items.map((f, i) => [f.field, values[i]] as const))
      : items.flatMap((f, i) => [f.field, values[i]]),
  );
}

const fieldCursors = new WeakMap<Keyspace, CursorRegistry<FieldScanPosition>>();

/** HSCAN ns cursor [MATCH pattern] [COUNT count] [NOVALUES] */
const hscan: Handler = ({ ks, now }, args) => {
  const { pattern, count, novalues } = parseScanOptions(args, 3, 'novalues');
  let cursors = fieldCursors.get(ks);
  if (cursors === undefined) {
    cursors = new CursorRegistry();
    fieldCursors.set(ks, cursors);
  }
  const pos = cursors.load(args[2].toString('latin1'), FIELD_SCAN_START);
  if (pos === undefined) return new ErrorReply('ERR invalid cursor');
  const { fields, next } = ks.fieldScanStep(args[1], pos, Math.min(count, 100_000), now);
  const cursor = cursors.save(next);
  const matched = pattern === null ? fields : fields.filter((f) => globMatch(pattern, f.field));
  if (novalues) return [cursor, matched.map((f) => f.field)];
  return settle(matched, (values) => [cursor, matched.flatMap((f, i) => [f.field, values[i]])]);
};

/** HRANDFIELD ns [count [WITHVALUES]] */
const hrandfield: Handler = (ctx, args) => {
  const { ks, now } = ctx;
  if (args.length > 4) return SYNTAX_ERROR;
  const withValues = args.length === 4;
  if (withValues && keyword(args[3]) !== 'withvalues') return SYNTAX_ERROR;
  const count = args.length >= 3 ? integerArg(args[2]) : null;
  const all = ks.namespaceFields(args[1], withValues, now);
  if (count === null) {
    return all.length === 0 ? null : all[Math.floor(Math.random() * all.length)].field;
  }
  let picked: FieldValue[];
  if (count >= 0) {
    // Distinct fields: a partial Fisher-Yates shuffle.
    const n = Math.min(count, all.length);
    for (let i = 0; i < n; i++) {
      const j = i + Math.floor(Math.random() * (all.length - i));
      [all[i], all[j]] = [all[j], all[i]];
    }
    picked = all.slice(0, n);
  } else {
    picked = all.length === 0 ? [] : Array.from({ length: -count }, () => all[Math.floor(Math.random() * all.length)]);
  }
  if (!withValues) return picked.map((f) => f.field);
  return settle(picked, (values) =>
    ctx.client.proto === 3 ? picked.map((f, i) => [f.field, values[i]]) : picked.flatMap((f, i) => [f.field, values[i]]),
  );
};

export const hashCommands: CommandSpec[] = [
  {
    ...HASH,
    name: 'hset',
    arity: -4,
    flags: ['write', 'denyoom', 'fast'],
    keys: oneKey(['RW', 'update']),
    categories: ['write', 'hash', 'fast'],
    summary: 'Creates or modifies the value of a field in a hash.',
    since: '2.0.0',
    handler: (ctx, args) => {
      if (args.length % 2 !== 0) return wrongArity('hset');
      const { added, ack } = hsetPairs(ctx, args, 2);
      return afterAck(ack, added);
    },
  },
  {
    ...HASH,
    name: 'hmset',
    arity: -4,
    flags: ['write', 'denyoom', 'fast'],
    keys: oneKey(['RW', 'update']),
    categories: ['write', 'hash', 'fast'],
    summary: 'Sets the values of multiple fields.',
    since: '2.0.0',
    handler: (ctx, args) => {
      if (args.length % 2 !== 0) return wrongArity('hmset');
      return afterAck(hsetPairs(ctx, args, 2).ack, OK);
    },
  },
  {
    ...HASH,
    name: 'hsetnx',
    arity: 4,
    flags: ['write', 'denyoom', 'fast'],
    keys: oneKey(['RW', 'insert']),
    categories: ['write', 'hash', 'fast'],
    summary: 'Sets the value of a field in a hash only when the field doesn\'t exist.',
    since: '2.0.0',
    handler: ({ ks, now }, args) => {
      if (ks.exists(args[1], args[2], now)) return 0;
      return afterAck(ks.set(args[1], args[2], args[3], 'clear', now), 1);
    },
  },
  {
    ...HASH,
    name: 'hget',
    arity: 3,
    flags: ['readonly', 'fast'],
    keys: oneKey(['RO', 'access']),
    categories: ['read', 'hash', 'fast'],
    summary: 'Returns the value of a field in a hash.',
    since: '2.0.0',
    handler: ({ ks, now }, args) => ks.get(args[1], args[2], now),
  },
  {
    ...HASH,
    name: 'hmget',
    arity: -3,
    flags: ['readonly', 'fast'],
    keys: oneKey(['RO', 'access']),
    categories: ['read', 'hash', 'fast'],
    summary: 'Returns the values of all fields in a hash.',
    since: '2.0.0',
    handler: ({ ks, now }, args) => {
      const values = args.slice(2).map((f) => ks.get(args[1], f, now));
      return arrayReply(values);
    },
  },
  {
    ...HASH,
    name: 'hdel',
    arity: -3,
    flags: ['write', 'fast'],
    keys: oneKey(['RW', 'delete']),
    categories: ['write', 'hash', 'fast'],
    summary: 'Deletes one or more fields and their values from a hash.',
    since: '2.0.0',
    handler: ({ ks, now }, args) => {
      const ns = args[1];
      let removed = 0;
      const acks: Ack[] = [];
      for (let i = 2; i < args.length; i++) {
        const field = ks.delete(ns, args[i], now);
        if (!field.removed) continue;
        removed++;
        acks.push(field.ack);
      }
      return afterAck(joinAcks(acks), removed);
    },
  },
  {
    ...HASH,
    name: 'hexists',
    arity: 3,
    flags: ['readonly', 'fast'],
    keys: oneKey(['RO']),
    categories: ['read', 'hash', 'fast'],
    summary: 'Determines whether a field exists in a hash.',
    since: '2.0.0',
    handler: ({ ks, now }, args) => (ks.exists(args[1], args[2], now) ? 1 : 0),
  },
  {
    ...HASH,
    name: 'hstrlen',
    arity: 3,
    flags: ['readonly', 'fast'],
    keys: oneKey(['RO']),
    categories: ['read', 'hash', 'fast'],
    summary: 'Returns the length of the value of a field.',
    since: '3.2.0',
    handler: ({ ks, now }, args) => ks.size(args[1], args[2], now),
  },
  {
    ...HASH,
    name: 'hlen',
    arity: 2,
    flags: ['readonly', 'fast'],
    keys: oneKey(['RO']),
    categories: ['read', 'hash', 'fast'],
    summary: 'Returns the number of fields in a hash.',
    since: '2.0.0',
    handler: ({ ks, now }, args) => ks.namespaceFields(args[1], false, now).length,
  },
  {
    ...HASH,
    name: 'hkeys',
    arity: 2,
    flags: ['readonly'],
    keys: oneKey(['RO', 'access']),
    categories: ['read', 'hash', 'slow'],
    tips: ['nondeterministic_output_order'],
    summary: 'Returns all fields in a hash.',
    since: '2.0.0',
    handler: ({ ks, now }, args) => ks.namespaceFields(args[1], false, now).map((f) => f.field),
  },
  {
    ...HASH,
    name: 'hvals',
    arity: 2,
    flags: ['readonly'],
    keys: oneKey(['RO', 'access']),
    categories: ['read', 'hash', 'slow'],
    tips: ['nondeterministic_output_order'],
    summary: 'Returns all values in a hash.',
    since: '2.0.0',
    handler: ({ ks, now }, args) => settle(ks.namespaceFields(args[1], true, now), (values) => values),
  },
  {
    ...HASH,
    name: 'hgetall',
    arity: 2,
    flags: ['readonly'],
    keys: oneKey(['RO', 'access']),
    categories: ['read', 'hash', 'slow'],
    tips: ['nondeterministic_output_order'],
    summary: 'Returns all fields and values in a hash.',
    since: '2.0.0',
    handler: (ctx, args) => pairs(ctx, ctx.ks.namespaceFields(args[1], true, ctx.now)),
  },
  {
    ...HASH,
    name: 'hscan',
    arity: -3,
    flags: ['readonly'],
    keys: oneKey(['RO', 'access']),
    categories: ['read', 'hash', 'slow'],
    tips: ['nondeterministic_output'],
    summary: 'Iterates over fields and values of a hash.',
    since: '2.8.0',
    handler: hscan,
  },
  {
    ...HASH,
    name: 'hrandfield',
    arity: -2,
    flags: ['readonly'],
    keys: oneKey(['RO', 'access']),
    categories: ['read', 'hash', 'slow'],
    tips: ['nondeterministic_output'],
    summary: 'Returns one or more random fields from a hash.',
    since: '6.2.0',
    handler: hrandfield,
  },
];
