/** Plain blobs: GET and SET. */
import { OK } from '../protocol/reply.js';
import { SYNTAX_ERROR } from './errors.js';
import { afterAck, type CommandSpec } from './types.js';

export const stringCommands: CommandSpec[] = [
  {
    name: 'get',
    arity: 2,
    flags: ['readonly', 'fast'],
    keys: { first: 1, last: 1, step: 1, flags: ['RO', 'access'] },
    categories: ['read', 'string', 'fast'],
    group: 'string',
    summary: 'Returns the string value of a key.',
    since: '1.0.0',
    handler: ({ store }, args) => store.get(args[1]),
  },
  {
    name: 'set',
    arity: -3,
    flags: ['write', 'denyoom'],
    keys: { first: 1, last: 1, step: 1, flags: ['OW', 'update'] },
    categories: ['write', 'string', 'slow'],
    group: 'string',
    summary: 'Sets the string value of a key, ignoring its type. The key is created if it doesn\'t exist.',
    since: '1.0.0',
    handler: ({ store }, args) => {
      // Options (EX, PX, NX, XX, GET, KEEPTTL …) are not supported yet; say so as Redis would.
      if (args.length > 3) return SYNTAX_ERROR;
      return afterAck(store.set(args[1], args[2]), OK);
    },
  },
];
