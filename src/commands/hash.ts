/**
 * Namespaced blobs through the hash commands: `HSET ns field value` stores a blob `field` in the
 * namespace `ns`. Namespaces live beside the plain key space; `SET x` and `HSET x f v` coexist.
 */
import type { Ack } from '../storage/store.js';
import { joinAcks } from '../storage/store.js';
import { wrongArity } from './errors.js';
import { afterAck, type CommandSpec } from './types.js';

export const hashCommands: CommandSpec[] = [
  {
    name: 'hset',
    arity: -4,
    flags: ['write', 'denyoom', 'fast'],
    keys: { first: 1, last: 1, step: 1, flags: ['RW', 'update'] },
    categories: ['write', 'hash', 'fast'],
    group: 'hash',
    summary: 'Creates or modifies the value of a field in a hash.',
    since: '2.0.0',
    handler: ({ store }, args) => {
      if (args.length % 2 !== 0) return wrongArity('hset');
      const ns = args[1];
      let added = 0;
      const acks: Ack[] = [];
      for (let i = 2; i < args.length; i += 2) {
        if (!store.hexists(ns, args[i])) added++;
        acks.push(store.hset(ns, args[i], args[i + 1]));
      }
      return afterAck(joinAcks(acks), added);
    },
  },
  {
    name: 'hget',
    arity: 3,
    flags: ['readonly', 'fast'],
    keys: { first: 1, last: 1, step: 1, flags: ['RO', 'access'] },
    categories: ['read', 'hash', 'fast'],
    group: 'hash',
    summary: 'Returns the value of a field in a hash.',
    since: '2.0.0',
    handler: ({ store }, args) => store.hget(args[1], args[2]),
  },
  {
    name: 'hdel',
    arity: -3,
    flags: ['write', 'fast'],
    keys: { first: 1, last: 1, step: 1, flags: ['RW', 'delete'] },
    categories: ['write', 'hash', 'fast'],
    group: 'hash',
    summary: 'Deletes one or more fields and their values from a hash.',
    since: '2.0.0',
    handler: ({ store }, args) => {
      const ns = args[1];
      let removed = 0;
      const acks: Ack[] = [];
      for (let i = 2; i < args.length; i++) {
        if (!store.hexists(ns, args[i])) continue;
        removed++;
        acks.push(store.hdelete(ns, args[i]));
      }
      return afterAck(joinAcks(acks), removed);
    },
  },
  {
    name: 'hexists',
    arity: 3,
    flags: ['readonly', 'fast'],
    keys: { first: 1, last: 1, step: 1, flags: ['RO'] },
    categories: ['read', 'hash', 'fast'],
    group: 'hash',
    summary: 'Determines whether a field exists in a hash.',
    since: '2.0.0',
    handler: ({ store }, args) => (store.hexists(args[1], args[2]) ? 1 : 0),
  },
];
