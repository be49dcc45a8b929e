/**
 * Deprecated string commands that clients still send: GETSET (SET … GET) and SUBSTR (GETRANGE).
 * They run the current commands' code, so their behaviour cannot drift from it.
 */
import { integerArg } from './args.js';
import { defineCommand, keyAt } from './define.js';
import { set } from './expiry.js';
import { byteRange } from './strings.js';
import type { CommandSpec, Handler } from './types.js';

const GET = Buffer.from('GET');
const EMPTY = Buffer.alloc(0);

/** GETSET key value: SET key value GET — the old value, and the TTL cleared. */
const getset: Handler = (ctx, args) => set(ctx, [args[0], args[1], args[2], GET]);

/** SUBSTR key start end: GETRANGE under its 1.0 name. */
const substr: Handler = ({ ks, now }, args) => {
  const start = integerArg(args[2]);
  const end = integerArg(args[3]);
  const v = ks.get(null, args[1], now);
  return v instanceof Promise ? v.then((b) => byteRange(b, start, end)) : byteRange(v ?? EMPTY, start, end);
};

export const legacyStringCommands: CommandSpec[] = [
  defineCommand({
    name: 'getset',
    group: 'string',
    summary: 'Set the string value of a key and return its old value',
    complexity: 'O(1)',
    since: '1.0.0',
    arity: 3,
    flags: ['write', 'denyoom', 'fast'],
    categories: ['string'],
    docFlags: ['deprecated'],
    deprecatedSince: '6.2.0',
    replacedBy: '`SET` with the `!GET` argument',
    keys: [keyAt(1, ['RW', 'access', 'update'])],
    handler: getset,
  }),
  defineCommand({
    name: 'substr',
    group: 'string',
    summary: 'Get a substring of the string stored at a key',
    complexity:
      'O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.',
    since: '1.0.0',
    arity: 4,
    flags: ['readonly'],
    categories: ['string'],
    docFlags: ['deprecated'],
    deprecatedSince: '2.0.0',
    replacedBy: '`GETRANGE`',
    keys: [keyAt(1, ['RO', 'access'])],
    handler: substr,
  }),
];
