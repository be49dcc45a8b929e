/** COMMAND's replies, generated from the command table as Redis 7 shapes them. */
import { RespMap, RespSet, SimpleString, type Reply } from '../protocol/reply.js';
import type { CommandSpec } from './types.js';

/** The 10-element COMMAND INFO entry. */
export function commandInfo(spec: CommandSpec): Reply {
  const k = spec.keys;
  return [
    spec.name,
    spec.arity,
    new RespSet(spec.flags.map((f) => new SimpleString(f))),
    k?.first ?? 0,
    k?.last ?? 0,
    k?.step ?? 0,
    new RespSet(spec.categories.map((c) => new SimpleString(`@${c}`))),
    new RespSet(spec.tips ?? []),
    k === null ? [] : [keySpec(spec)],
    (spec.subcommands ?? []).map(commandInfo),
  ];
}

function keySpec(spec: CommandSpec): Reply {
  const k = spec.keys!;
  return new RespMap([
    ['flags', new RespSet(k.flags.map((f) => new SimpleString(f)))],
    ['begin_search', new RespMap([['type', 'index'], ['spec', new RespMap([['index', k.first]])]])],
    [
      'find_keys',
      new RespMap([
        ['type', 'range'],
        ['spec', new RespMap([['lastkey', k.last < 0 ? k.last : k.last - k.first], ['keystep', k.step], ['limit', 0]])],
      ]),
    ],
  ]);
}

/** The COMMAND DOCS entry: summary, since, group, and the subcommands' docs. */
export function commandDocs(spec: CommandSpec): Reply {
  const entries: [Reply, Reply][] = [
    ['summary', spec.summary],
    ['since', spec.since],
    ['group', spec.group],
  ];
  if (spec.subcommands !== undefined && spec.subcommands.length > 0) {
    entries.push(['subcommands', new RespMap(spec.subcommands.map((s) => [s.name, commandDocs(s)] as const))]);
  }
  return new RespMap(entries);
}
