/**
 * Namespaced blobs through the hash commands: `HSET ns field value` stores a blob `field` in the
 * namespace `ns`. Namespaces live beside the plain key space; `SET x` and `HSET x f v` coexist.
 * A namespace's fields are spread over every shard, so whole-namespace reads gather from all.
 */
import { OK, RespMap, type Reply } from '../protocol/reply.js';
import { fieldScanStep, namespaceFields, type FieldScanPosition, type FieldValue } from '../storage/keyspace.js';
import { joinAcks, type Ack, type Store } from '../storage/store.js';
import { CursorRegistry } from './cursors.js';
import { NOT_INTEGER, parseInteger, SYNTAX_ERROR, wrongArity } from './errors.js';
import { globMatch } from './glob.js';
import { ErrorReply } from '../protocol/reply.js';
import { afterAck, arrayReply, oneKey, type CommandContext, type CommandSpec, type Handler } from './types.js';

const HASH = { group: 'hash' } as const;
function hsetPairs(store: Store, args: Buffer[], from: number): { added: number; ack: Ack } {
  const ns = args[1];
  let added = 0;
  const acks: Ack[] = [];
  for (let i = from; i < args.length; i += 2) {
    if (!store.hexists(ns, args[i])) added++;
    acks.push(store.hset(ns, args[i], args[i + 1]));
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

/**
 * COUNT is a hint (Redis may return more or fewer): one step reads at most this many fields, so one
 * HSCAN cannot pull a namespace's worth of blobs into memory at once.
 */
const HSCAN_MAX_NAMES = 100_000;
const HSCAN_MAX_VALUES = 1000;

const fieldCursors = new WeakMap<Store, CursorRegistry<FieldScanPosition>>();

const hscan: Handler = (ctx, args) => {
  const { store } = ctx;
  let pattern: Buffer | null = null;
  let count = 10;
  let novalues = false;
  for (let i = 3; i < args.length; i++) {
    const opt = args[i].toString('latin1').toLowerCase();
    if (opt === 'novalues') {
      novalues = true;
      continue;
    }
    if (i + 1 >= args.length) return SYNTAX_ERROR;
    if (opt === 'match') pattern = args[++i];
    else if (opt === 'count') {
      const n = parseInteger(args[++i]);
      if (n === null) return NOT_INTEGER;
      if (n < 1) return SYNTAX_ERROR;
      count = n;
    } else return SYNTAX_ERROR;
  }
  let cursors = fieldCursors.get(store);
  if (cursors === undefined) {
    cursors = new CursorRegistry();
    fieldCursors.set(store, cursors);
  }
  const pos = cursors.load(args[2].toString('latin1'), { shard: 0, after: null });
  if (pos === undefined) return new ErrorReply('ERR invalid cursor');
  const { fields, next } = fieldScanStep(store, args[1], pos, Math.min(count, novalues ? HSCAN_MAX_NAMES : HSCAN_MAX_VALUES));
  const cursor = cursors.save(next);
  const matched = pattern === null ? fields : fields.filter((f) => globMatch(pattern, f.field));
  if (novalues) return [cursor, matched.map((f) => f.field)];
  return settle(matched, (values) => [cursor, matched.flatMap((f, i) => [f.field, values[i]])]);
};

/**
 * A negative HRANDFIELD count repeats fields, so its reply is as long as the client asks: past this
 * it is refused (Redis would build it) rather than built past every output limit. A positive
 * count is bounded by the hash's size already.
 */
const HRANDFIELD_MAX_REPEATS = 100_000;
const COUNT_OUT_OF_RANGE = new ErrorReply('ERR value is out of range');

const hrandfield: Handler = (ctx, args) => {
  const { store } = ctx;
  if (args.length >= 3) {
    const n = parseInteger(args[2]);
    if (n !== null && n < -HRANDFIELD_MAX_REPEATS) return COUNT_OUT_OF_RANGE;
  }
  if (args.length > 4) return SYNTAX_ERROR;
  const withValues = args.length === 4;
  if (withValues && args[3].toString('latin1').toLowerCase() !== 'withvalues') return SYNTAX_ERROR;
  const count = args.length >= 3 ? parseInteger(args[2]) : null;
  if (args.length >= 3 && count === null) return NOT_INTEGER;
  const all = namespaceFields(store, args[1], withValues);
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
    handler: ({ store }, args) => {
      if (args.length % 2 !== 0) return wrongArity('hset');
      const { added, ack } = hsetPairs(store, args, 2);
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
    handler: ({ store }, args) => {
      if (args.length % 2 !== 0) return wrongArity('hmset');
      return afterAck(hsetPairs(store, args, 2).ack, OK);
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
    handler: ({ store }, args) => {
      if (store.hexists(args[1], args[2])) return 0;
      return afterAck(store.hset(args[1], args[2], args[3]), 1);
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
    handler: ({ store }, args) => store.hget(args[1], args[2]),
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
    handler: ({ store }, args) => {
      const values = args.slice(2).map((f) => store.hget(args[1], f));
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
    handler: ({ store }, args) => {
      const ns = args[1];
      let removed = 0;
      const acks: Ack[] = [];
      for (let i = 2; i < args.length; i++) {
        if (!store.hexists(ns, args[i])) continue;
        removed++;
        acks.push(store.hdelete(ns, args[i]));
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
    handler: ({ store }, args) => (store.hexists(args[1], args[2]) ? 1 : 0),
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
    handler: ({ store }, args) => store.size(args[1], args[2]),
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
    handler: ({ store }, args) => namespaceFields(store, args[1], false).length,
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
    handler: ({ store }, args) => namespaceFields(store, args[1], false).map((f) => f.field),
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
    handler: ({ store }, args) => settle(namespaceFields(store, args[1], true), (values) => values),
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
    handler: (ctx, args) => pairs(ctx, namespaceFields(ctx.store, args[1], true)),
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
