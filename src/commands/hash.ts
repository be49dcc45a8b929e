/**
 * Namespaced blobs through the hash commands: `HSET ns field value` stores a blob `field` in the
 * namespace `ns`. Namespaces live beside the plain key space; `SET x` and `HSET x f v` coexist.
 * A namespace's fields are spread over every shard, so whole-namespace reads gather from all.
 */
import { ErrorReply, OK, RespMap, StreamedArray, type Reply } from '../protocol/reply.js';
import { FIELD_SCAN_START, joinAcks, type Ack, type FieldScanPosition, type FieldStream, type FieldValue, type Keyspace } from '../storage/keyspace.js';
import { keyword, NOT_INTEGER_TEXT, parseInt64 } from './args.js';
import { valueReply } from './strings.js';
import { CursorRegistry } from './cursors.js';
import { SYNTAX_ERROR, wrongArity } from './errors.js';
import { globMatch } from './glob.js';
import { parseScanOptions } from './keys.js';
import { defineCommand, keyAt } from './define.js';
import { afterAck, arrayReply, type CommandContext, type CommandSpec, type Handler } from './types.js';

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

/** What a whole-namespace read answers: field/value pairs (HGETALL), names (HKEYS) or values (HVALS). */
type Shape = 'pairs' | 'fields' | 'values';

const CRLF = Buffer.from('\r\n');
const NULL_BULK = Buffer.from('$-1\r\n');

/**
 * HGETALL / HKEYS / HVALS. A small namespace is answered as one reply, as before; a large one as a
 * StreamedArray: the header from the count (known first), then one bounded batch of fields per
 * piece, read as the client's socket drains, so neither the server's memory nor the event loop
 * holds the whole namespace (keyspace.ts namespaceRead says how the batches stay consistent).
 * Inside EXEC the reply is one element of EXEC's array, so it is built whole.
 */
function wholeNamespace(ctx: CommandContext, ns: Buffer, shape: Shape): Reply | Promise<Reply> {
  const whole = ctx.client.tx?.executing === true;
  const read = ctx.ks.namespaceRead(ns, shape !== 'fields', ctx.now, whole);
  if (Array.isArray(read)) {
    if (shape === 'pairs') return pairs(ctx, read);
    if (shape === 'fields') return read.map((f) => f.field);
    return settle(read, (values) => values);
  }
  return new StreamedArray(fieldSource(read as FieldStream, shape, ctx.client.proto === 3));
}

function fieldSource(fields: FieldStream, shape: Shape, resp3: boolean): { length: number; next(): Promise<Buffer | null>; release(): void } {
  let headerSent = false;
  const bulk = (out: Buffer[], b: Buffer): void => {
    out.push(Buffer.from(`$${b.length}\r\n`, 'latin1'), b, CRLF);
  };
  return {
    length: 0,
    next: async () => {
      if (!headerSent) {
        headerSent = true;
        const header = shape === 'pairs' ? (resp3 ? `%${fields.count}` : `*${fields.count * 2}`) : `*${fields.count}`;
        return Buffer.from(`${header}\r\n`, 'latin1');
      }
      const batch = await fields.next();
      if (batch === null) return null;
      const out: Buffer[] = [];
      for (const f of batch) {
        if (shape !== 'values') bulk(out, f.field);
        if (shape !== 'fields') {
          if (f.value === null) out.push(NULL_BULK);
          else bulk(out, f.value);
        }
      }
      return Buffer.concat(out);
    },
    release: () => fields.release(),
  };
}

/**
 * COUNT is a hint (Redis may return more or fewer): one step reads at most this many fields, so one
 * HSCAN cannot pull a namespace's worth of blobs into memory at once.
 */
const HSCAN_MAX_NAMES = 100_000;
const HSCAN_MAX_VALUES = 1000;

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
  const { fields, next } = ks.fieldScanStep(args[1], pos, Math.min(count, novalues ? HSCAN_MAX_NAMES : HSCAN_MAX_VALUES), now);
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
const LONG_MAX = 2n ** 63n - 1n;
const COUNT_NOT_A_LONG = new ErrorReply(`ERR value is out of range, value must between ${-LONG_MAX} and ${LONG_MAX}`);

/**
 * HRANDFIELD's count, checked in Redis' order (hrandfieldCommand): an integer in ±LONG_MAX, then
 * the syntax, then WITHVALUES' ±LONG_MAX/2; then this server's cap on repeats.
 */
function hrandfieldCount(args: readonly Buffer[]): { count: number; withValues: boolean } | ErrorReply {
  const n = parseInt64(args[2]);
  if (n === null) return new ErrorReply(NOT_INTEGER_TEXT);
  if (n < -LONG_MAX) return COUNT_NOT_A_LONG;
  if (args.length > 4 || (args.length === 4 && keyword(args[3]) !== 'withvalues')) return SYNTAX_ERROR;
  const withValues = args.length === 4;
  if (withValues && (n < -LONG_MAX / 2n || n > LONG_MAX / 2n)) return COUNT_OUT_OF_RANGE;
  if (n < -HRANDFIELD_MAX_REPEATS) return COUNT_OUT_OF_RANGE;
  // A positive count is capped by the namespace's size, so any larger one reads the same.
  return { count: n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n), withValues };
}

/** HRANDFIELD ns [count [WITHVALUES]] */
const hrandfield: Handler = (ctx, args) => {
  const { ks, now } = ctx;
  let count: number | null = null;
  let withValues = false;
  if (args.length >= 3) {
    const parsed = hrandfieldCount(args);
    if (parsed instanceof ErrorReply) return parsed;
    ({ count, withValues } = parsed);
  }
  // A large namespace is sampled in steps rather than read whole (keyspace.ts namespaceSample).
  const sampled = ks.namespaceSample(args[1], count, withValues, now, ctx.client.tx?.executing === true);
  if (sampled !== null) return sampled.then((picked) => randomFieldsReply(ctx, picked, count, withValues));
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
  return randomFieldsReply(ctx, picked, count, withValues);
};

/** HRANDFIELD's reply for the fields picked: one name (no count), names, or pairs (RESP3: an array of pairs). */
function randomFieldsReply(ctx: CommandContext, picked: FieldValue[], count: number | null, withValues: boolean): Reply | Promise<Reply> {
  if (count === null) return picked.length === 0 ? null : picked[0].field;
  if (!withValues) return picked.map((f) => f.field);
  return settle(picked, (values) =>
    ctx.client.proto === 3 ? picked.map((f, i) => [f.field, values[i]]) : picked.flatMap((f, i) => [f.field, values[i]]),
  );
}

export const hashCommands: CommandSpec[] = [
  defineCommand({
    name: 'hset',
    group: 'hash',
    summary: 'Set the string value of a hash field',
    complexity:
      'O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs.',
    since: '2.0.0',
    arity: -4,
    flags: ['write', 'denyoom', 'fast'],
    categories: ['hash'],
    keys: [keyAt(1, ['RW', 'update'])],
    fields: { first: 2, step: 2 },
    handler: (ctx, args) => {
      if (args.length % 2 !== 0) return wrongArity('hset');
      const { added, ack } = hsetPairs(ctx, args, 2);
      return afterAck(ack, added);
    },
  }),
  defineCommand({
    name: 'hmset',
    group: 'hash',
    summary: 'Set multiple hash fields to multiple values',
    complexity: 'O(N) where N is the number of fields being set.',
    since: '2.0.0',
    arity: -4,
    flags: ['write', 'denyoom', 'fast'],
    categories: ['hash'],
    docFlags: ['deprecated'],
    deprecatedSince: '4.0.0',
    replacedBy: '`HSET` with multiple field-value pairs',
    keys: [keyAt(1, ['RW', 'update'])],
    fields: { first: 2, step: 2 },
    handler: (ctx, args) => {
      if (args.length % 2 !== 0) return wrongArity('hmset');
      return afterAck(hsetPairs(ctx, args, 2).ack, OK);
    },
  }),
  defineCommand({
    name: 'hsetnx',
    group: 'hash',
    summary: 'Set the value of a hash field, only if the field does not exist',
    complexity: 'O(1)',
    since: '2.0.0',
    arity: 4,
    flags: ['write', 'denyoom', 'fast'],
    categories: ['hash'],
    keys: [keyAt(1, ['RW', 'insert'])],
    fields: { first: 2, last: 2 },
    handler: ({ ks, now }, args) => {
      if (ks.exists(args[1], args[2], now)) return 0;
      return afterAck(ks.set(args[1], args[2], args[3], 'clear', now), 1);
    },
  }),
  defineCommand({
    name: 'hget',
    group: 'hash',
    summary: 'Get the value of a hash field',
    complexity: 'O(1)',
    since: '2.0.0',
    arity: 3,
    flags: ['readonly', 'fast'],
    categories: ['hash'],
    keys: [keyAt(1, ['RO', 'access'])],
    fields: { first: 2, last: 2 },
    handler: (ctx, args) => valueReply(ctx, args[1], args[2]),
  }),
  defineCommand({
    name: 'hmget',
    group: 'hash',
    summary: 'Get the values of all the given hash fields',
    complexity: 'O(N) where N is the number of fields being requested.',
    since: '2.0.0',
    arity: -3,
    flags: ['readonly', 'fast'],
    categories: ['hash'],
    keys: [keyAt(1, ['RO', 'access'])],
    fields: { first: 2 },
    handler: ({ ks, now }, args) => {
      const values = args.slice(2).map((f) => ks.get(args[1], f, now));
      return arrayReply(values);
    },
  }),
  defineCommand({
    name: 'hdel',
    group: 'hash',
    summary: 'Delete one or more hash fields',
    complexity: 'O(N) where N is the number of fields to be removed.',
    since: '2.0.0',
    arity: -3,
    flags: ['write', 'fast'],
    categories: ['hash'],
    keys: [keyAt(1, ['RW', 'delete'])],
    fields: { first: 2 },
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
  }),
  defineCommand({
    name: 'hexists',
    group: 'hash',
    summary: 'Determine if a hash field exists',
    complexity: 'O(1)',
    since: '2.0.0',
    arity: 3,
    flags: ['readonly', 'fast'],
    categories: ['hash'],
    keys: [keyAt(1, ['RO'])],
    fields: { first: 2, last: 2 },
    handler: ({ ks, now }, args) => (ks.exists(args[1], args[2], now) ? 1 : 0),
  }),
  defineCommand({
    name: 'hstrlen',
    group: 'hash',
    summary: 'Get the length of the value of a hash field',
    complexity: 'O(1)',
    since: '3.2.0',
    arity: 3,
    flags: ['readonly', 'fast'],
    categories: ['hash'],
    keys: [keyAt(1, ['RO'])],
    fields: { first: 2, last: 2 },
    handler: ({ ks, now }, args) => ks.size(args[1], args[2], now),
  }),
  defineCommand({
    name: 'hlen',
    group: 'hash',
    summary: 'Get the number of fields in a hash',
    complexity: 'O(1)',
    since: '2.0.0',
    arity: 2,
    flags: ['readonly', 'fast'],
    categories: ['hash'],
    keys: [keyAt(1, ['RO'])],
    handler: ({ ks, now }, args) => ks.namespaceLength(args[1], now),
  }),
  defineCommand({
    name: 'hkeys',
    group: 'hash',
    summary: 'Get all the fields in a hash',
    complexity: 'O(N) where N is the size of the hash.',
    since: '2.0.0',
    arity: 2,
    flags: ['readonly'],
    categories: ['hash'],
    tips: ['nondeterministic_output_order'],
    keys: [keyAt(1, ['RO', 'access'])],
    handler: (ctx, args) => wholeNamespace(ctx, args[1], 'fields'),
  }),
  defineCommand({
    name: 'hvals',
    group: 'hash',
    summary: 'Get all the values in a hash',
    complexity: 'O(N) where N is the size of the hash.',
    since: '2.0.0',
    arity: 2,
    flags: ['readonly'],
    categories: ['hash'],
    tips: ['nondeterministic_output_order'],
    keys: [keyAt(1, ['RO', 'access'])],
    handler: (ctx, args) => wholeNamespace(ctx, args[1], 'values'),
  }),
  defineCommand({
    name: 'hgetall',
    group: 'hash',
    summary: 'Get all the fields and values in a hash',
    complexity: 'O(N) where N is the size of the hash.',
    since: '2.0.0',
    arity: 2,
    flags: ['readonly'],
    categories: ['hash'],
    tips: ['nondeterministic_output_order'],
    keys: [keyAt(1, ['RO', 'access'])],
    handler: (ctx, args) => wholeNamespace(ctx, args[1], 'pairs'),
  }),
  defineCommand({
    name: 'hscan',
    group: 'hash',
    summary: 'Incrementally iterate hash fields and associated values',
    complexity:
      'O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..',
    since: '2.8.0',
    arity: -3,
    flags: ['readonly'],
    categories: ['hash'],
    tips: ['nondeterministic_output'],
    keys: [keyAt(1, ['RO', 'access'])],
    handler: hscan,
  }),
  defineCommand({
    name: 'hrandfield',
    group: 'hash',
    summary: 'Get one or multiple random fields from a hash',
    complexity: 'O(N) where N is the number of fields returned',
    since: '6.2.0',
    arity: -2,
    flags: ['readonly'],
    categories: ['hash'],
    tips: ['nondeterministic_output'],
    keys: [keyAt(1, ['RO', 'access'])],
    handler: hrandfield,
  }),
];
