/** COMMAND's replies, generated from the command table as Redis 7.0 shapes them (server.c). */
import { RespMap, RespSet, SimpleString, type Reply } from '../protocol/reply.js';
import type { CommandSpec, KeySpec } from './types.js';

/** The 10-element COMMAND INFO entry (addReplyCommandInfo). */
export function commandInfo(spec: CommandSpec): Reply {
  const k = spec.legacyKeys;
  return [
    spec.name,
    spec.arity,
    new RespSet(spec.flags.map((f) => new SimpleString(f))),
    k?.first ?? 0,
    k?.last ?? 0,
    k?.step ?? 0,
    new RespSet(spec.categories.map((c) => new SimpleString(`@${c}`))),
    new RespSet(spec.tips),
    new RespSet(spec.keySpecs.map(keySpec)),
    subcommands(spec, commandInfo),
  ];
}

/** addReplyCommandKeySpecs: notes (when there are any), flags, begin_search, find_keys. */
function keySpec(k: KeySpec): Reply {
  const entries: [Reply, Reply][] = [];
  if (k.notes !== undefined) entries.push(['notes', k.notes]);
  entries.push(['flags', new RespSet(k.flags.map((f) => new SimpleString(f)))]);
  const bs = k.beginSearch;
  entries.push([
    'begin_search',
    bs.type === 'index'
      ? new RespMap([['type', 'index'], ['spec', new RespMap([['index', bs.index]])]])
      : new RespMap([['type', 'keyword'], ['spec', new RespMap([['keyword', bs.keyword], ['startfrom', bs.startfrom]])]]),
  ]);
  const fk = k.findKeys;
  entries.push([
    'find_keys',
    fk.type === 'range'
      ? new RespMap([['type', 'range'], ['spec', new RespMap([['lastkey', fk.lastkey], ['keystep', fk.keystep], ['limit', fk.limit]])]])
      : new RespMap([['type', 'keynum'], ['spec', new RespMap([['keynumidx', fk.keynumidx], ['firstkey', fk.firstkey], ['keystep', fk.keystep]])]]),
  ]);
  return new RespMap(entries);
}

/** An empty set without subcommands; otherwise an array (INFO) of their entries, as Redis 7.0. */
function subcommands(spec: CommandSpec, entry: (s: CommandSpec) => Reply): Reply {
  const subs = spec.subcommands ?? [];
  return subs.length === 0 ? new RespSet([]) : subs.map(entry);
}

/**
 * The COMMAND DOCS entry (addReplyCommandDocs) without `history` and `arguments`, which the table
 * does not carry: summary, since, group, complexity, doc_flags, deprecated_since, replaced_by and
 * the subcommands' docs (a map by name).
 */
export function commandDocs(spec: CommandSpec): Reply {
  const entries: [Reply, Reply][] = [
    ['summary', spec.summary],
    ['since', spec.since],
    ['group', spec.group],
  ];
  if (spec.complexity !== undefined) entries.push(['complexity', spec.complexity]);
  if (spec.docFlags.length > 0) entries.push(['doc_flags', new RespSet(spec.docFlags.map((f) => new SimpleString(f)))]);
  if (spec.deprecatedSince !== undefined) entries.push(['deprecated_since', spec.deprecatedSince]);
  if (spec.replacedBy !== undefined) entries.push(['replaced_by', spec.replacedBy]);
  if (spec.subcommands !== undefined && spec.subcommands.length > 0) {
    entries.push(['subcommands', new RespMap(spec.subcommands.map((s) => [s.name, commandDocs(s)] as const))]);
  }
  return new RespMap(entries);
}

/** One key found by COMMAND GETKEYS: its argument index and its key spec's flags. */
export interface FoundKey {
  readonly index: number;
  readonly flags: readonly string[];
}

/**
 * The keys of a command call found from its key specs, as Redis' getKeysUsingKeySpecs does
 * (GET_KEYSPEC_DEFAULT); null when a spec points past the arguments or at a bad key count, where
 * Redis answers "Invalid arguments specified for command".
 */
export function keysFromSpecs(spec: CommandSpec, args: readonly Buffer[]): FoundKey[] | null {
  const out: FoundKey[] = [];
  const argc = args.length;
  for (const k of spec.keySpecs) {
    let first = 0;
    const bs = k.beginSearch;
    if (bs.type === 'index') {
      first = bs.index;
    } else {
      const start = bs.startfrom > 0 ? bs.startfrom : argc + bs.startfrom;
      const end = bs.startfrom > 0 ? argc - 1 : 1;
      for (let i = start; ; i = start <= end ? i + 1 : i - 1) {
        if (i >= argc || i < 1) break;
        if (args[i].toString('latin1').toUpperCase() === bs.keyword) {
          first = i + 1;
          break;
        }
        if (i === end) break;
      }
      if (first === 0) continue;
    }
    let last: number;
    let step: number;
    const fk = k.findKeys;
    if (fk.type === 'range') {
      step = fk.keystep;
      if (fk.lastkey >= 0) last = first + fk.lastkey;
      else if (fk.limit <= 1) last = argc + fk.lastkey;
      else last = first + Math.floor((argc - first) / fk.limit) + fk.lastkey;
    } else {
      step = fk.keystep;
      const at = first + fk.keynumidx;
      const n = at < argc ? Number(args[at].toString('latin1')) : NaN;
      if (!Number.isInteger(n) || n < 0 || !/^-?\d+$/.test(args[at].toString('latin1'))) return null;
      first += fk.firstkey;
      last = first + (n - 1) * step;
    }
    for (let i = first; i <= last; i += step) {
      if (i >= argc || i < first) return null;
      out.push({ index: i, flags: k.flags });
    }
  }
  return out;
}
