/**
 * Commands on keys of any kind. A name can be a plain blob, a namespace (which Redis clients see as
 * a hash), or both at once, since the two live side by side: DEL deletes both and counts each,
 * EXISTS counts each, TYPE answers "string" when there is a blob.
 */
import { ErrorReply, OK, SimpleString } from '../protocol/reply.js';
import { joinAcks, SCAN_START, type Ack, type Keyspace, type ScanPosition } from '../storage/keyspace.js';
import { ArgReader, SYNTAX_ERROR_TEXT } from './args.js';
import { CursorRegistry } from './cursors.js';
import { globMatch } from './glob.js';
import { afterAck, CommandError, type CommandSpec, type Handler } from './types.js';
import { defineCommand, keyAt } from './define.js';

/** DEL and UNLINK: each name's blob and namespace are deleted, each counted. */
const del: Handler = ({ ks, now }, args) => {
  let removed = 0;
  const acks: Ack[] = [];
  // One at a time, so `DEL k k` counts k once: the first delete hides it from the second.
  for (let i = 1; i < args.length; i++) {
    const blob = ks.delete(null, args[i], now);
    if (blob.removed) {
      removed++;
      acks.push(blob.ack);
    }
    if (ks.namespaceExists(args[i], now)) {
      removed++;
      acks.push(ks.deleteNamespace(args[i]));
    }
  }
  return afterAck(joinAcks(acks), removed);
};

/** EXISTS and TOUCH (there is no access time to touch). */
const exists: Handler = ({ ks, now }, args) => {
  let found = 0;
  for (let i = 1; i < args.length; i++) {
    if (ks.exists(null, args[i], now)) found++;
    if (ks.namespaceExists(args[i], now)) found++;
  }
  return found;
};

const scanCursors = new WeakMap<Keyspace, CursorRegistry<ScanPosition>>();

function cursorsOf(ks: Keyspace): CursorRegistry<ScanPosition> {
  let reg = scanCursors.get(ks);
  if (reg === undefined) {
    reg = new CursorRegistry();
    scanCursors.set(ks, reg);
  }
  return reg;
}

/** The MATCH and COUNT options of SCAN and HSCAN (and TYPE for SCAN, NOVALUES for HSCAN). */
export interface ScanOptions {
  pattern: Buffer | null;
  count: number;
  type: string | null;
  novalues: boolean;
}

export function parseScanOptions(args: readonly Buffer[], from: number, extra: 'type' | 'novalues'): ScanOptions {
  const opts: ScanOptions = { pattern: null, count: 10, type: null, novalues: false };
  const r = new ArgReader(args, from);
  while (!r.done) {
    const opt = r.keyword();
    if (opt === 'novalues' && extra === 'novalues') {
      opts.novalues = true;
      continue;
    }
    if (r.done) throw new CommandError(SYNTAX_ERROR_TEXT);
    if (opt === 'match') opts.pattern = r.take();
    else if (opt === 'count') {
      opts.count = r.integer();
      if (opts.count < 1) throw new CommandError(SYNTAX_ERROR_TEXT);
    } else if (opt === 'type' && extra === 'type') opts.type = r.keyword();
    else throw new CommandError(SYNTAX_ERROR_TEXT);
  }
  return opts;
}

/** SCAN cursor [MATCH pattern] [COUNT count] [TYPE type] */
const scan: Handler = ({ ks, now }, args) => {
  const { pattern, count, type } = parseScanOptions(args, 2, 'type');
  const cursors = cursorsOf(ks);
  const pos = cursors.load(args[1].toString('latin1'), SCAN_START);
  if (pos === undefined) return new ErrorReply('ERR invalid cursor');
  const types = { strings: type === null || type === 'string', hashes: type === null || type === 'hash' };
  const { keys, next } = ks.scanStep(pos, Math.min(count, 100_000), types, now);
  const matched = pattern === null ? keys : keys.filter((k) => globMatch(pattern, k));
  return [cursors.save(next), matched];
};

/**
 * KEYS pattern: every matching key, gathered by scanning to the end, 1000 candidates a step. The
 * event loop is given back between steps, so other clients are served while a large keyspace is
 * walked (a key present throughout is listed; one written or deleted meanwhile may or may not be).
 */
const keys: Handler = async ({ ks, now }, args) => {
  const out: Buffer[] = [];
  const all = args[1].length === 1 && args[1][0] === 0x2a;
  let pos: ScanPosition | null = SCAN_START;
  while (pos !== null) {
    const step = ks.scanStep(pos, 1000, { strings: true, hashes: true }, now);
    for (const k of step.keys) if (all || globMatch(args[1], k)) out.push(k);
    pos = step.next;
    if (pos !== null) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  // A namespace spread over several shards is met once per shard; KEYS lists it once.
  const seen = new Set<string>();
  return out.filter((k) => {
    const id = k.toString('latin1');
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
};

/** RENAME / RENAMENX for plain blobs: the value and its expiry move; the copy lands first. */
function rename(nx: boolean): Handler {
  return ({ ks, now }, args) => {
    const result = ks.rename(args[1], args[2], now, nx);
    if (!result.done) return result.why === 'no-source' ? NO_SUCH_KEY : 0;
    return afterAck(result.ack, nx ? 1 : OK);
  };
}

const NO_SUCH_KEY = new ErrorReply('ERR no such key');

export const keyCommands: CommandSpec[] = [
  defineCommand({
    name: 'del',
    group: 'generic',
    summary: 'Delete a key',
    complexity:
      'O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1).',
    since: '1.0.0',
    arity: -2,
    flags: ['write'],
    categories: ['keyspace'],
    tips: ['request_policy:multi_shard', 'response_policy:agg_sum'],
    keys: [keyAt(1, ['RM', 'delete'], { lastkey: -1 })],
    handler: del,
  }),
  defineCommand({
    name: 'unlink',
    group: 'generic',
    summary: 'Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.',
    complexity:
      'O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread in order to reclaim memory, where N is the number of allocations the deleted objects where composed of.',
    since: '4.0.0',
    arity: -2,
    flags: ['write', 'fast'],
    categories: ['keyspace'],
    tips: ['request_policy:multi_shard', 'response_policy:agg_sum'],
    keys: [keyAt(1, ['RM', 'delete'], { lastkey: -1 })],
    handler: del,
  }),
  defineCommand({
    name: 'exists',
    group: 'generic',
    summary: 'Determine if a key exists',
    complexity: 'O(N) where N is the number of keys to check.',
    since: '1.0.0',
    arity: -2,
    flags: ['readonly', 'fast'],
    categories: ['keyspace'],
    tips: ['request_policy:multi_shard', 'response_policy:agg_sum'],
    keys: [keyAt(1, ['RO'], { lastkey: -1 })],
    handler: exists,
  }),
  defineCommand({
    name: 'touch',
    group: 'generic',
    summary: 'Alters the last access time of a key(s). Returns the number of existing keys specified.',
    complexity: 'O(N) where N is the number of keys that will be touched.',
    since: '3.2.1',
    arity: -2,
    flags: ['readonly', 'fast'],
    categories: ['keyspace'],
    tips: ['request_policy:multi_shard', 'response_policy:agg_sum'],
    keys: [keyAt(1, ['RO'], { lastkey: -1 })],
    handler: exists,
  }),
  defineCommand({
    name: 'type',
    group: 'generic',
    summary: 'Determine the type stored at key',
    complexity: 'O(1)',
    since: '1.0.0',
    arity: 2,
    flags: ['readonly', 'fast'],
    categories: ['keyspace'],
    keys: [keyAt(1, ['RO'])],
    handler: ({ ks, now }, args) => new SimpleString(ks.keyType(args[1], now)),
  }),
  defineCommand({
    name: 'rename',
    group: 'generic',
    summary: 'Rename a key',
    complexity: 'O(1)',
    since: '1.0.0',
    arity: 3,
    flags: ['write'],
    categories: ['keyspace'],
    keys: [keyAt(1, ['RW', 'access', 'delete']), keyAt(2, ['OW', 'update'])],
    handler: rename(false),
  }),
  defineCommand({
    name: 'renamenx',
    group: 'generic',
    summary: 'Rename a key, only if the new key does not exist',
    complexity: 'O(1)',
    since: '1.0.0',
    arity: 3,
    flags: ['write', 'fast'],
    categories: ['keyspace'],
    keys: [keyAt(1, ['RW', 'access', 'delete']), keyAt(2, ['OW', 'insert'])],
    handler: rename(true),
  }),
  defineCommand({
    name: 'scan',
    group: 'generic',
    summary: 'Incrementally iterate the keys space',
    complexity:
      'O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.',
    since: '2.8.0',
    arity: -2,
    flags: ['readonly'],
    categories: ['keyspace'],
    tips: ['nondeterministic_output', 'request_policy:special'],
    handler: scan,
  }),
  defineCommand({
    name: 'keys',
    group: 'generic',
    summary: 'Find all keys matching the given pattern',
    complexity:
      'O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length.',
    since: '1.0.0',
    arity: 2,
    flags: ['readonly'],
    categories: ['keyspace', 'dangerous'],
    tips: ['request_policy:all_shards', 'nondeterministic_output_order'],
    handler: keys,
  }),
  defineCommand({
    name: 'randomkey',
    group: 'generic',
    summary: 'Return a random key from the keyspace',
    complexity: 'O(1)',
    since: '1.0.0',
    arity: 1,
    flags: ['readonly'],
    categories: ['keyspace'],
    tips: ['request_policy:all_shards', 'nondeterministic_output'],
    handler: ({ ks, now }) => ks.randomKey(now),
  }),
];
