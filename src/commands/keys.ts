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

const GENERIC = { group: 'generic' } as const;
const MULTI_KEY_TIPS = ['request_policy:multi_shard', 'response_policy:agg_sum'];

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

/** KEYS pattern: every matching key, gathered by scanning to the end. */
const keys: Handler = ({ ks, now }, args) => {
  const out: Buffer[] = [];
  const all = args[1].length === 1 && args[1][0] === 0x2a;
  let pos: ScanPosition | null = SCAN_START;
  while (pos !== null) {
    const step = ks.scanStep(pos, 1000, { strings: true, hashes: true }, now);
    for (const k of step.keys) if (all || globMatch(args[1], k)) out.push(k);
    pos = step.next;
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
  {
    ...GENERIC,
    name: 'del',
    arity: -2,
    flags: ['write'],
    keys: { first: 1, last: -1, step: 1, flags: ['RM', 'delete'] },
    categories: ['keyspace', 'write', 'slow'],
    tips: MULTI_KEY_TIPS,
    summary: 'Deletes one or more keys.',
    since: '1.0.0',
    handler: del,
  },
  {
    ...GENERIC,
    name: 'unlink',
    arity: -2,
    flags: ['write', 'fast'],
    keys: { first: 1, last: -1, step: 1, flags: ['RM', 'delete'] },
    categories: ['keyspace', 'write', 'fast'],
    tips: MULTI_KEY_TIPS,
    summary: 'Asynchronously deletes one or more keys.',
    since: '4.0.0',
    handler: del,
  },
  {
    ...GENERIC,
    name: 'exists',
    arity: -2,
    flags: ['readonly', 'fast'],
    keys: { first: 1, last: -1, step: 1, flags: ['RO'] },
    categories: ['keyspace', 'read', 'fast'],
    tips: MULTI_KEY_TIPS,
    summary: 'Determines whether one or more keys exist.',
    since: '1.0.0',
    handler: exists,
  },
  {
    ...GENERIC,
    name: 'touch',
    arity: -2,
    flags: ['readonly', 'fast'],
    keys: { first: 1, last: -1, step: 1, flags: ['RO'] },
    categories: ['keyspace', 'read', 'fast'],
    tips: MULTI_KEY_TIPS,
    summary: 'Returns the number of existing keys out of those specified after updating the time they were last accessed.',
    since: '3.2.1',
    handler: exists,
  },
  {
    ...GENERIC,
    name: 'type',
    arity: 2,
    flags: ['readonly', 'fast'],
    keys: { first: 1, last: 1, step: 1, flags: ['RO'] },
    categories: ['keyspace', 'read', 'fast'],
    summary: 'Determines the type of value stored at a key.',
    since: '1.0.0',
    handler: ({ ks, now }, args) => new SimpleString(ks.keyType(args[1], now)),
  },
  {
    ...GENERIC,
    name: 'rename',
    arity: 3,
    flags: ['write'],
    keys: { first: 1, last: 2, step: 1, flags: ['RW', 'access', 'delete'] },
    categories: ['keyspace', 'write', 'slow'],
    summary: 'Renames a key and overwrites the destination.',
    since: '1.0.0',
    handler: rename(false),
  },
  {
    ...GENERIC,
    name: 'renamenx',
    arity: 3,
    flags: ['write', 'fast'],
    keys: { first: 1, last: 2, step: 1, flags: ['RW', 'access', 'delete'] },
    categories: ['keyspace', 'write', 'fast'],
    summary: 'Renames a key only when the target key name doesn\'t exist.',
    since: '1.0.0',
    handler: rename(true),
  },
  {
    ...GENERIC,
    name: 'scan',
    arity: -2,
    flags: ['readonly'],
    keys: null,
    categories: ['keyspace', 'read', 'slow'],
    tips: ['nondeterministic_output', 'request_policy:special'],
    summary: 'Iterates over the key names in the database.',
    since: '2.8.0',
    handler: scan,
  },
  {
    ...GENERIC,
    name: 'keys',
    arity: 2,
    flags: ['readonly'],
    keys: null,
    categories: ['keyspace', 'read', 'slow', 'dangerous'],
    tips: ['request_policy:all_shards', 'nondeterministic_output_order'],
    summary: 'Returns all key names that match a pattern.',
    since: '1.0.0',
    handler: keys,
  },
  {
    ...GENERIC,
    name: 'randomkey',
    arity: 1,
    flags: ['readonly'],
    keys: null,
    categories: ['keyspace', 'read', 'slow'],
    tips: ['request_policy:all_shards', 'nondeterministic_output'],
    summary: 'Returns a random key name from the database.',
    since: '1.0.0',
    handler: ({ ks, now }) => ks.randomKey(now),
  },
];
