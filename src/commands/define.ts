/**
 * `defineCommand()`: the one way to build a command table entry. A declaration says what Redis'
 * command JSON files say (src/commands/*.json in the redis repository): flags, explicit ACL
 * categories, key specs, tips, docs. Everything COMMAND shows that Redis derives is derived here
 * the way Redis derives it (ACL categories from flags, the legacy first/last/step from the key
 * specs), and the declaration is checked when the module loads, so a wrong spec fails at startup
 * (and in every test), not in a client.
 */
import type { CommandFlag, CommandSpec, CommandSpecFields, FieldSpec, Handler, KeySpec, KeySpecFlag, LegacyKeys } from './types.js';

export interface CommandDeclaration {
  /** Lower-case; a subcommand is named `container|sub`, as Redis names it. */
  readonly name: string;
  readonly group: string;
  readonly summary: string;
  readonly complexity?: string;
  readonly since: string;
  /** Redis arity: N means exactly N words including the name, -N means at least N. */
  readonly arity: number;
  readonly flags: readonly CommandFlag[];
  /** ACL categories beyond those derived from the flags (Redis' JSON `acl_categories`). */
  readonly categories?: readonly AclCategory[];
  readonly tips?: readonly string[];
  /** Redis 7 key specs, in argument order (RENAME has two). None: the command takes no key. */
  readonly keys?: readonly KeySpec[];
  /**
   * Where a namespaced (hash) command's fields are, for `namespace_routing = "field"`: from index
   * `first` to `last` (default -1: to the end) every `step` (default 1), or after `KEYWORD numfields`.
   * None: the command acts on the whole namespace and routes by it.
   */
  readonly fields?: { first: number; last?: number; step?: number } | { keyword: string; step?: number };
  readonly docFlags?: readonly ('deprecated' | 'syscmd')[];
  readonly deprecatedSince?: string;
  readonly replacedBy?: string;
  readonly handler: Handler;
  readonly subcommands?: readonly CommandSpec[];
}

/** Redis' ACL categories, in the order COMMAND INFO lists them (acl.c ACLCommandCategories). */
export const ACL_CATEGORIES = [
  'keyspace', 'read', 'write', 'set', 'sortedset', 'list', 'hash', 'string', 'bitmap', 'hyperloglog', 'geo',
  'stream', 'pubsub', 'admin', 'fast', 'slow', 'blocking', 'dangerous', 'connection', 'transaction', 'scripting',
] as const;
export type AclCategory = (typeof ACL_CATEGORIES)[number];

/** Categories that only the flags decide (setImplicitACLCategories); declaring them is an error. */
const FLAG_ONLY_CATEGORIES: ReadonlySet<string> = new Set(['read', 'write', 'fast', 'slow', 'pubsub', 'blocking']);

/** The flags COMMAND INFO shows, in the order it shows them (server.c addReplyFlagsForCommand). */
const FLAG_ORDER: readonly CommandFlag[] = [
  'write', 'readonly', 'denyoom', 'module', 'admin', 'pubsub', 'noscript', 'blocking', 'loading', 'stale',
  'skip_monitor', 'skip_slowlog', 'asking', 'fast', 'no_auth', 'no_mandatory_keys', 'no_async_loading', 'no_multi',
  'movablekeys', 'allow_busy',
];

/** Key-spec flags in the order COMMAND INFO shows them (server.c addReplyFlagsForKeyArgs). */
const KEY_FLAG_ORDER: readonly KeySpecFlag[] = [
  'RO', 'RW', 'OW', 'RM', 'access', 'update', 'insert', 'delete', 'not_key', 'incomplete', 'variable_flags',
];

const TIP = /^(nondeterministic_output|nondeterministic_output_order|request_policy:(all_nodes|all_shards|multi_shard|special)|response_policy:(one_succeeded|all_succeeded|agg_logical_and|agg_logical_or|agg_min|agg_max|agg_sum|special))$/;
const GROUPS: ReadonlySet<string> = new Set([
  'generic', 'string', 'list', 'set', 'sorted-set', 'hash', 'pubsub', 'transactions', 'connection', 'server',
  'scripting', 'hyperloglog', 'cluster', 'sentinel', 'geo', 'stream', 'bitmap',
]);
const VERSION = /^\d+\.\d+\.\d+$/;

/** A key found at a fixed argument index; `lastkey`/`keystep`/`limit` as Redis' range find_keys. */
export function keyAt(
  index: number,
  flags: readonly KeySpecFlag[],
  opts: { lastkey?: number; keystep?: number; limit?: number; notes?: string } = {},
): KeySpec {
  return {
    ...(opts.notes === undefined ? {} : { notes: opts.notes }),
    flags,
    beginSearch: { type: 'index', index },
    findKeys: { type: 'range', lastkey: opts.lastkey ?? 0, keystep: opts.keystep ?? 1, limit: opts.limit ?? 0 },
  };
}

/** Keys found after a keyword (Redis' keyword begin_search), e.g. STREAMS in XREAD. */
export function keyAfter(
  keyword: string,
  startfrom: number,
  flags: readonly KeySpecFlag[],
  opts: { lastkey?: number; keystep?: number; limit?: number; notes?: string } = {},
): KeySpec {
  return { ...keyAt(0, flags, opts), beginSearch: { type: 'keyword', keyword, startfrom } };
}

export function defineCommand(d: CommandDeclaration): CommandSpec {
  const fail = (why: string): never => {
    throw new Error(`command spec ${d.name}: ${why}`);
  };
  if (!/^[a-z][a-z0-9_-]*(\|[a-z][a-z0-9_-]*)?$/.test(d.name)) fail('the name must be lower-case (container|sub for a subcommand)');
  const isSub = d.name.includes('|');
  if (!Number.isInteger(d.arity) || d.arity === 0 || Math.abs(d.arity) < (isSub ? 2 : 1)) fail(`arity ${d.arity} is not a Redis arity`);
  if (!GROUPS.has(d.group)) fail(`unknown group ${d.group}`);
  if (!VERSION.test(d.since)) fail(`since ${d.since} is not a version`);
  if (d.deprecatedSince !== undefined && !VERSION.test(d.deprecatedSince)) fail('deprecatedSince is not a version');
  if (d.summary === '') fail('no summary');

  const flags = new Set(d.flags);
  for (const f of d.flags) if (!FLAG_ORDER.includes(f)) fail(`unknown flag ${f}`);
  if (flags.size !== d.flags.length) fail('a flag is listed twice');
  if (flags.has('write') && flags.has('readonly')) fail('write and readonly exclude each other');
  for (const t of d.tips ?? []) if (!TIP.test(t)) fail(`unknown tip ${t}`);
  for (const c of d.categories ?? []) {
    if (!(ACL_CATEGORIES as readonly string[]).includes(c)) fail(`unknown ACL category ${c}`);
    if (FLAG_ONLY_CATEGORIES.has(c)) fail(`@${c} follows from the flags; do not declare it`);
  }

  const keys = d.keys ?? [];
  keys.forEach((k, i) => checkKeySpec(k, d.arity, (why) => fail(`key spec ${i}: ${why}`)));
  // WATCH is the one command with keys that neither reads nor writes them (Redis' own spec); EVAL/FCALL
  // are neither either: whether the script writes is known only when it runs (as in Redis).
  const watchesOnly = d.group === 'transactions' || d.group === 'scripting';
  if (keys.length > 0 && !watchesOnly && !flags.has('write') && !flags.has('readonly') && !keys.every((k) => k.flags.includes('not_key'))) {
    fail('a command with keys is either write or readonly');
  }
  const fields: FieldSpec | null =
    d.fields === undefined
      ? null
      : 'keyword' in d.fields
        ? { keyword: d.fields.keyword, step: d.fields.step ?? 1 }
        : { first: d.fields.first, last: d.fields.last ?? -1, step: d.fields.step ?? 1 };
  if (fields !== null) checkFields(fields, d, keys, fail);

  const subs = d.subcommands ?? [];
  for (const s of subs) if (!s.name.startsWith(`${d.name}|`)) fail(`subcommand ${s.name} is not named ${d.name}|…`);
  if (isSub && subs.length > 0) fail('a subcommand has no subcommands');

  const legacy = legacyKeys(keys);
  const spec: CommandSpecFields = {
    name: d.name,
    arity: d.arity,
    flags: FLAG_ORDER.filter((f) => flags.has(f) || (f === 'movablekeys' && legacy.movable)),
    keySpecs: keys.map((k) => ({ ...k, flags: KEY_FLAG_ORDER.filter((f) => k.flags.includes(f)) })),
    legacyKeys: legacy.range,
    fields,
    categories: categoriesOf(flags, d.categories ?? []),
    tips: d.tips ?? [],
    group: d.group,
    summary: d.summary,
    ...(d.complexity === undefined ? {} : { complexity: d.complexity }),
    since: d.since,
    docFlags: d.docFlags ?? [],
    ...(d.deprecatedSince === undefined ? {} : { deprecatedSince: d.deprecatedSince }),
    ...(d.replacedBy === undefined ? {} : { replacedBy: d.replacedBy }),
    handler: d.handler,
    ...(subs.length === 0 ? {} : { subcommands: subs }),
  };
  return spec as CommandSpec;
}

function checkKeySpec(k: KeySpec, arity: number, fail: (why: string) => never): void {
  for (const f of k.flags) if (!KEY_FLAG_ORDER.includes(f)) fail(`unknown flag ${f}`);
  const access = k.flags.filter((f) => f === 'RO' || f === 'RW' || f === 'OW' || f === 'RM');
  if (access.length !== 1 && !k.flags.includes('not_key')) fail('exactly one of RO, RW, OW, RM');
  const words = Math.abs(arity);
  const bs = k.beginSearch;
  if (bs.type === 'index') {
    if (!Number.isInteger(bs.index) || bs.index < 1) fail('the begin_search index must be 1 or more');
    // A key every call has: within the words the arity requires.
    if (bs.index >= words) fail(`index ${bs.index} is beyond arity ${arity}`);
  } else if (bs.keyword === '' || bs.keyword !== bs.keyword.toUpperCase() || bs.startfrom === 0) {
    fail('a keyword search needs an upper-case keyword and a non-zero startfrom');
  }
  const fk = k.findKeys;
  if (fk.type === 'range') {
    if (fk.keystep < 1 || fk.limit < 0) fail('range keystep must be 1 or more, limit 0 or more');
    if (fk.lastkey < 0 && arity > 0) fail('lastkey "to the end" needs a variable arity');
    if (bs.type === 'index' && fk.lastkey > 0 && arity > 0 && bs.index + fk.lastkey >= words) fail('range beyond arity');
  } else if (fk.keynumidx < 0 || fk.firstkey < 1 || fk.keystep < 1) {
    fail('keynum needs keynumidx ≥ 0, firstkey ≥ 1, keystep ≥ 1');
  }
}

function checkFields(f: FieldSpec, d: CommandDeclaration, keys: readonly KeySpec[], fail: (why: string) => never): void {
  const one = keys.length === 1 ? keys[0] : undefined;
  if (d.group !== 'hash') fail('fields are declared only on hash commands (namespaces)');
  if (one === undefined || one.beginSearch.type !== 'index' || one.beginSearch.index !== 1 || one.findKeys.type !== 'range' || one.findKeys.lastkey !== 0) {
    fail('fields need exactly one key, the namespace at index 1');
  }
  if (f.step < 1) fail('fields step must be 1 or more');
  if ('keyword' in f) {
    if (f.keyword !== f.keyword.toUpperCase() || f.keyword === '') fail('the fields keyword is upper-case');
    if (d.arity > 0) fail('fields after a keyword need a variable arity');
  } else {
    if (f.first < 2 || f.first >= Math.abs(d.arity)) fail(`first field ${f.first} is not within arity ${d.arity}`);
    if (f.last >= 0 && (f.last < f.first || (d.arity > 0 && f.last >= d.arity))) fail('last field out of range');
    if (f.last < 0 && d.arity > 0) fail('fields to the end need a variable arity');
  }
}

/**
 * The (first, last, step) triple COMMAND INFO shows and cluster routing reads, derived as Redis'
 * populateCommandLegacyRangeSpec does: one index+range spec is used as it is; otherwise the
 * consecutive step-1 index+range specs are merged, and anything else makes the keys "movable".
 */
function legacyKeys(keys: readonly KeySpec[]): { range: LegacyKeys | null; movable: boolean } {
  if (keys.length === 0) return { range: null, movable: false };
  const abs = (k: KeySpec & { beginSearch: { type: 'index' }; findKeys: { type: 'range' } }): number =>
    k.findKeys.lastkey >= 0 ? k.beginSearch.index + k.findKeys.lastkey : k.findKeys.lastkey;
  if (keys.length === 1 && isIndexRange(keys[0])) {
    const k = keys[0];
    return { range: { first: k.beginSearch.index, last: abs(k), step: k.findKeys.keystep }, movable: k.flags.includes('incomplete') };
  }
  let first = Number.MAX_SAFE_INTEGER;
  let last = 0;
  let prevLast = 0;
  let movable = false;
  // Redis compares lastkey as unsigned, so a negative ("to the end") lastkey wins over any index.
  const unsigned = (n: number): number => (n < 0 ? 2 ** 32 + n : n);
  for (const k of keys) {
    if (!isIndexRange(k) || k.findKeys.keystep !== 1 || (prevLast !== 0 && prevLast !== k.beginSearch.index - 1)) {
      movable = true;
      continue;
    }
    if (k.flags.includes('incomplete')) movable = true;
    first = Math.min(first, k.beginSearch.index);
    const l = abs(k);
    last = unsigned(l) > unsigned(last) ? l : last;
    prevLast = last;
  }
  if (first === Number.MAX_SAFE_INTEGER) return { range: null, movable: true };
  return { range: { first, last, step: 1 }, movable };
}

function isIndexRange(k: KeySpec): k is KeySpec & { beginSearch: { type: 'index'; index: number }; findKeys: { type: 'range'; lastkey: number; keystep: number; limit: number } } {
  return k.beginSearch.type === 'index' && k.findKeys.type === 'range';
}

/** Redis' setImplicitACLCategories: the flags' categories plus the declared ones, in Redis' order. */
function categoriesOf(flags: ReadonlySet<CommandFlag>, declared: readonly AclCategory[]): AclCategory[] {
  const cats = new Set<AclCategory>(declared);
  if (flags.has('write')) cats.add('write');
  if (flags.has('readonly') && !cats.has('scripting')) cats.add('read');
  if (flags.has('admin')) {
    cats.add('admin');
    cats.add('dangerous');
  }
  if (flags.has('pubsub')) cats.add('pubsub');
  if (flags.has('fast')) cats.add('fast');
  if (flags.has('blocking')) cats.add('blocking');
  if (!cats.has('fast')) cats.add('slow');
  return ACL_CATEGORIES.filter((c) => cats.has(c));
}
