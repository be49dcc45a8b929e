/** Commands on keys of any kind: DEL and EXISTS. */
import type { Ack } from '../storage/store.js';
import { joinAcks } from '../storage/store.js';
import { afterAck, type CommandSpec } from './types.js';

export const keyCommands: CommandSpec[] = [
  {
    name: 'del',
    arity: -2,
    flags: ['write'],
    keys: { first: 1, last: -1, step: 1, flags: ['RM', 'delete'] },
    categories: ['keyspace', 'write', 'slow'],
    tips: ['request_policy:multi_shard', 'response_policy:agg_sum'],
    group: 'generic',
    summary: 'Deletes one or more keys.',
    since: '1.0.0',
    handler: ({ store }, args) => {
      // Checked one by one, so `DEL k k` counts k once: the first delete hides it from the second.
      let removed = 0;
      const acks: Ack[] = [];
      for (let i = 1; i < args.length; i++) {
        if (!store.exists(args[i])) continue;
        removed++;
        acks.push(store.delete(args[i]));
      }
      return afterAck(joinAcks(acks), removed);
    },
  },
  {
    name: 'exists',
    arity: -2,
    flags: ['readonly', 'fast'],
    keys: { first: 1, last: -1, step: 1, flags: ['RO'] },
    categories: ['keyspace', 'read', 'fast'],
    tips: ['request_policy:multi_shard', 'response_policy:agg_sum'],
    group: 'generic',
    summary: 'Determines whether one or more keys exist.',
    since: '1.0.0',
    handler: ({ store }, args) => {
      let found = 0;
      for (let i = 1; i < args.length; i++) if (store.exists(args[i])) found++;
      return found;
    },
  },
];
