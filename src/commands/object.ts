/**
 * What a key is and what it costs: OBJECT, MEMORY USAGE, and BLOBINFO / HBLOBINFO (ours: the
 * stored metadata of a blob or of a namespace field). Redis' answers are about its in-memory
 * objects; ours are about the rows in the shard files, answered in Redis' shapes so that tools
 * (redis-cli --memkeys/--bigkeys, RDB analysers, client libraries) read them as they read Redis'.
 */
import { ErrorReply, RespMap, SimpleString, type Reply } from '../protocol/reply.js';
import type { BlobMeta } from '../storage/keyspace.js';
import { parseInt64 } from './args.js';
import { defineCommand, keyAt } from './define.js';
import { NOT_INTEGER, SYNTAX_ERROR } from './errors.js';
import type { CommandContext, CommandSpec } from './types.js';
import { VERSION } from '../version.js';

/** Redis' OBJ_SHARED_REFCOUNT: what OBJECT REFCOUNT answers for its shared integers 0..9999. */
const SHARED_REFCOUNT = 2147483647;
/**
 * Redis' OBJ_ENCODING_EMBSTR_SIZE_LIMIT, and the defaults of hash-max-listpack-entries/-value
 * (512 entries, 64 bytes; CONFIG SET changes them).
 */
const EMBSTR_MAX = 44;
const LISTPACK_MAX_ENTRIES = 512;
const LISTPACK_MAX_VALUE = 64;

const LFU_OFF = new ErrorReply(
  'ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.',
);

/**
 * Estimated bytes of SQLite bookkeeping per row, beyond its key and stored value: the table cell
 * (pointer, payload and rowid varints, record header, the integer columns) and the primary-key
 * index cell (which repeats the key). A row with an expiry also has an entry in the expiry index.
 * Rough by design (varint widths vary by a few bytes); see README.md, "Introspection".
 */
const ROW_OVERHEAD = 44;
const EXPIRY_INDEX_ENTRY = 21;
/** A value longer than what fits in a page spills to overflow pages, each with a 4-byte link. */
const OVERFLOW_PAGE_PAYLOAD = 4092;

/** Bytes a row takes in its shard file (estimate): key twice (row and index), value, bookkeeping. */
export function rowBytes(nameBytes: number, meta: BlobMeta): number {
  return (
    2 * nameBytes +
    meta.storedSize +
    ROW_OVERHEAD +
    (meta.expiresAt === null ? 0 : EXPIRY_INDEX_ENTRY) +
    4 * Math.floor(meta.storedSize / OVERFLOW_PAGE_PAYLOAD)
  );
}

/** Whether Redis would store this string as an integer (string2l: canonical decimal, in a long). */
export function isRedisInteger(value: Buffer): boolean {
  // string2l refuses "-0" (it reads the sign, then wants a digit 1-9).
  return value.length <= 20 && parseInt64(value) !== null && !(value.length === 2 && value[0] === 0x2d && value[1] === 0x30);
}

/** OBJECT ENCODING of a string value, as Redis' SET would encode the same bytes (tryObjectEncoding). */
export function stringEncoding(value: Buffer): string {
  if (isRedisInteger(value)) return 'int';
  return value.length <= EMBSTR_MAX ? 'embstr' : 'raw';
}

type Then<T> = T | Promise<T>;
function then<T, R>(v: Then<T>, f: (v: T) => Then<R>): Then<R> {
  return v instanceof Promise ? v.then(f) : f(v);
}

/** OBJECT ENCODING: int/embstr/raw for a blob; listpack/hashtable for a namespace, by Redis' limits. */
/** hash-max-listpack-entries/-value as CONFIG GET shows them now (CONFIG SET changes them). */
function listpackLimits(server: CommandContext['server']): { maxEntries: number; maxValue: number } {
  let maxEntries = LISTPACK_MAX_ENTRIES;
  let maxValue = LISTPACK_MAX_VALUE;
  for (const [name, value] of server.configParameters()) {
    if (name === 'hash-max-listpack-entries') maxEntries = Number(value);
    else if (name === 'hash-max-listpack-value') maxValue = Number(value);
  }
  return { maxEntries, maxValue };
}

function encoding({ ks, now, server }: CommandContext, key: Buffer): Then<Reply> {
  const type = ks.keyType(key, now);
  if (type === 'none') return null;
  if (type === 'string') {
    // A value longer than an integer or an embstr is raw without reading it.
    return then(ks.size(null, key, now), (size) => {
      if (size > EMBSTR_MAX) return 'raw';
      return then(ks.get(null, key, now), (v) => (v === null ? null : stringEncoding(v)));
    });
  }
  const { maxEntries, maxValue } = listpackLimits(server);
  const fields = ks.namespaceFields(key, false, now);
  if (fields.length > maxEntries || fields.some((f) => f.field.length > maxValue)) return 'hashtable';
  const sizes = fields.map((f) => ks.size(key, f.field, now));
  const decide = (all: number[]): Reply => (all.some((n) => n > maxValue) ? 'hashtable' : 'listpack');
  return sizes.some((s) => s instanceof Promise) ? Promise.all(sizes).then(decide) : decide(sizes as number[]);
}

/** OBJECT REFCOUNT: Redis shares the integers 0..9999; every other value has one reference. */
function refcount({ ks, now }: CommandContext, key: Buffer): Then<Reply> {
  const type = ks.keyType(key, now);
  if (type === 'none') return null;
  if (type === 'hash') return 1;
  return then(ks.size(null, key, now), (size) => {
    if (size > 4) return 1;
    return then(ks.get(null, key, now), (v) => {
      if (v === null) return null;
      const n = isRedisInteger(v) ? Number(v.toString('latin1')) : -1;
      return n >= 0 && n < 10000 ? SHARED_REFCOUNT : 1;
    });
  });
}

/**
 * OBJECT IDLETIME: seconds since the key was last written (reads are not recorded: a read never
 * writes to the shard files). For a namespace, since its most recently written field of those
 * sampled by MEMORY USAGE's default (5).
 */
async function idletime({ ks, now }: CommandContext, key: Buffer): Promise<Reply> {
  const type = ks.keyType(key, now);
  if (type === 'none') return null;
  const metas = type === 'string' ? [await ks.meta(null, key, now)] : await sampleFields(ks, key, now, 5).then((s) => s.metas);
  const updated = Math.max(...metas.map((m) => m?.updatedAt ?? now));
  return Math.max(0, Math.floor((now - updated) / 1000));
}

async function sampleFields(
  ks: CommandContext['ks'],
  ns: Buffer,
  now: number,
  samples: number,
): Promise<{ count: number; metas: (BlobMeta | null)[]; names: Buffer[] }> {
  const fields = ks.namespaceFields(ns, false, now);
  const names = fields.slice(0, samples).map((f) => f.field);
  const metas = await Promise.all(names.map((f) => ks.meta(ns, f, now)));
  return { count: fields.length, metas, names };
}

/** MEMORY USAGE key [SAMPLES count]: the row's estimated bytes; a namespace's fields are sampled. */
async function memoryUsage({ ks, now }: CommandContext, key: Buffer, samples: number): Promise<Reply> {
  const type = ks.keyType(key, now);
  if (type === 'none') return null;
  if (type === 'string') {
    const meta = await ks.meta(null, key, now);
    return meta === null ? null : rowBytes(key.length, meta);
  }
  // As Redis: the average of the sampled elements, times their number.
  const { count, metas, names } = await sampleFields(ks, key, now, samples);
  let sum = 0;
  let seen = 0;
  metas.forEach((m, i) => {
    if (m === null) return;
    sum += rowBytes(key.length + names[i].length, m);
    seen++;
  });
  if (seen === 0) return null;
  return Math.round((sum / seen) * count);
}

function parseSamples(args: Buffer[]): number | ErrorReply {
  let samples = 5;
  for (let i = 3; i < args.length; i++) {
    if (args[i].toString('latin1').toLowerCase() === 'samples' && i + 1 < args.length) {
      const n = parseInt64(args[++i]);
      if (n === null) return NOT_INTEGER;
      if (n < 0n) return SYNTAX_ERROR;
      samples = n === 0n ? Number.MAX_SAFE_INTEGER : Number(n > 1_000_000_000n ? 1_000_000_000n : n);
    } else {
      return SYNTAX_ERROR;
    }
  }
  return samples;
}

/** BLOBINFO / HBLOBINFO's reply: a map (a flat array in RESP2), times in epoch ms, -1 for no expiry. */
export function blobInfoReply(meta: BlobMeta | null): Reply {
  if (meta === null) return null;
  return new RespMap([
    ['size', meta.size],
    ['stored-size', meta.storedSize],
    ['codec', meta.codec],
    ['created-at', meta.createdAt],
    ['updated-at', meta.updatedAt],
    ['expires-at', meta.expiresAt ?? -1],
    ['version', meta.version],
  ]);
}

const OBJECT_HELP = [
  'OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'ENCODING <key>',
  '    Return the kind of internal representation used in order to store the value',
  '    associated with a <key>.',
  'FREQ <key>',
  '    Return the access frequency index of the <key>. The returned integer is',
  '    proportional to the logarithm of the recent access frequency of the key.',
  'IDLETIME <key>',
  '    Return the idle time of the <key>, that is the approximated number of',
  '    seconds elapsed since the last access to the key.',
  'REFCOUNT <key>',
  '    Return the number of references of the value associated with the specified',
  '    <key>.',
  'HELP',
  '    Prints this help.',
];

/** Redis' MEMORY HELP lines for the subcommands this server has (USAGE; not DOCTOR, STATS, PURGE…). */
const MEMORY_HELP = [
  'MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'USAGE <key> [SAMPLES <count>]',
  '    Return memory in bytes used by <key> and its value. Nested values are',
  '    sampled up to <count> times (default: 5, 0 means sample all).',
  'HELP',
  '    Prints this help.',
];

export function helpLines(lines: readonly string[]): Reply {
  return lines.map((l) => new SimpleString(l));
}

function objectSub(name: string, summary: string, since: string, handler: (ctx: CommandContext, key: Buffer) => Then<Reply>): CommandSpec {
  return defineCommand({
    name: `object|${name}`,
    group: 'generic',
    summary,
    complexity: 'O(1)',
    since,
    arity: 3,
    flags: ['readonly'],
    categories: ['keyspace'],
    tips: ['nondeterministic_output'],
    keys: [keyAt(2, ['RO'])],
    handler: (ctx, args) => handler(ctx, args[2]),
  });
}

export const objectCommands: CommandSpec[] = [
  defineCommand({
    name: 'object',
    group: 'generic',
    summary: 'A container for object introspection commands',
    complexity: 'Depends on subcommand.',
    since: '2.2.3',
    arity: -2,
    flags: [],
    handler: () => helpLines(OBJECT_HELP), // never called: the dispatcher routes to a subcommand
    subcommands: [
      objectSub('encoding', 'Inspect the internal encoding of a Redis object', '2.2.3', encoding),
      objectSub('freq', 'Get the logarithmic access frequency counter of a Redis object', '4.0.0', ({ ks, now }, key) =>
        // maxmemory-policy is noeviction here, so, as in Redis, only a missing key escapes the error.
        ks.keyType(key, now) === 'none' ? null : LFU_OFF,
      ),
      objectSub('idletime', 'Get the time since a Redis object was last accessed', '2.2.3', idletime),
      objectSub('refcount', 'Get the number of references to the value of the key', '2.2.3', refcount),
      defineCommand({
        name: 'object|help',
        group: 'generic',
        summary: 'Show helpful text about the different subcommands',
        complexity: 'O(1)',
        since: '6.2.0',
        arity: 2,
        flags: ['loading', 'stale'],
        categories: ['keyspace'],
        handler: () => helpLines(OBJECT_HELP),
      }),
    ],
  }),
  defineCommand({
    name: 'memory',
    group: 'server',
    summary: 'A container for memory diagnostics commands',
    complexity: 'Depends on subcommand.',
    since: '4.0.0',
    arity: -2,
    flags: [],
    handler: () => helpLines(MEMORY_HELP), // never called: the dispatcher routes to a subcommand
    subcommands: [
      defineCommand({
        name: 'memory|usage',
        group: 'server',
        summary: 'Estimate the memory usage of a key',
        complexity: 'O(N) where N is the number of samples.',
        since: '4.0.0',
        arity: -3,
        flags: ['readonly'],
        keys: [keyAt(2, ['RO'])],
        handler: (ctx, args) => {
          const samples = parseSamples(args);
          return samples instanceof ErrorReply ? samples : memoryUsage(ctx, args[2], samples);
        },
      }),
      defineCommand({
        name: 'memory|help',
        group: 'server',
        summary: 'Show helpful text about the different subcommands',
        complexity: 'O(1)',
        since: '4.0.0',
        arity: 2,
        flags: ['loading', 'stale'],
        handler: () => helpLines(MEMORY_HELP),
      }),
    ],
  }),
  defineCommand({
    name: 'blobinfo',
    group: 'generic',
    summary: 'Get the stored metadata of a key: sizes, codec, times, version',
    complexity: 'O(1)',
    since: VERSION,
    arity: 2,
    flags: ['readonly'],
    categories: ['keyspace'],
    keys: [keyAt(1, ['RO'])],
    handler: async ({ ks, now }, args) => blobInfoReply(await ks.meta(null, args[1], now)),
  }),
  defineCommand({
    name: 'hblobinfo',
    group: 'hash',
    summary: 'Get the stored metadata of a hash field: sizes, codec, times, version',
    complexity: 'O(1)',
    since: VERSION,
    arity: 3,
    flags: ['readonly'],
    categories: ['hash'],
    keys: [keyAt(1, ['RO'])],
    fields: { first: 2, last: 2 },
    handler: async ({ ks, now }, args) => blobInfoReply(await ks.meta(args[1], args[2], now)),
  }),
];
