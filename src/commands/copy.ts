/**
 * COPY source destination [DB destination-db] [REPLACE] for plain blobs, with the source's TTL.
 * There is one database: DB 0 is accepted, any other index is Redis' "out of range" error. As
 * with RENAME, a namespace is not copied (its fields are spread over every shard): COPY of a name
 * that is only a namespace answers 0.
 */
import { ErrorReply } from '../protocol/reply.js';
import { keyword, NOT_INTEGER_TEXT, parseInt64 } from './args.js';
import { defineCommand, keyAt } from './define.js';
import { SYNTAX_ERROR } from './errors.js';
import { afterAck, type CommandSpec, type Handler } from './types.js';

/** Redis' getIntFromObjectOrReply: a 32-bit signed integer, or its two error texts. */
function int32(arg: Buffer): number | ErrorReply {
  const n = parseInt64(arg);
  if (n === null) return new ErrorReply(NOT_INTEGER_TEXT);
  if (n < -(2n ** 31n) || n >= 2n ** 31n) return new ErrorReply('ERR value is out of range, value must between -2147483648 and 2147483647');
  return Number(n);
}

const copy: Handler = ({ ks, now }, args) => {
  let replace = false;
  for (let j = 3; j < args.length; j++) {
    const opt = keyword(args[j]);
    if (opt === 'replace') replace = true;
    else if (opt === 'db' && j + 1 < args.length) {
      const db = int32(args[++j]);
      if (db instanceof ErrorReply) return db;
      if (db !== 0) return new ErrorReply('ERR DB index is out of range');
    } else return SYNTAX_ERROR;
  }
  if (args[1].equals(args[2])) return new ErrorReply('ERR source and destination objects are the same');
  const ack = ks.copy(args[1], args[2], now, replace);
  return ack === null ? 0 : afterAck(ack, 1);
};

export const copyCommands: CommandSpec[] = [
  defineCommand({
    name: 'copy',
    group: 'generic',
    summary: 'Copy a key',
    complexity: 'O(N) worst case for collections, where N is the number of nested items. O(1) for string values.',
    since: '6.2.0',
    arity: -3,
    flags: ['write', 'denyoom'],
    categories: ['keyspace'],
    keys: [keyAt(1, ['RO', 'access']), keyAt(2, ['OW', 'update'])],
    handler: copy,
  }),
];
