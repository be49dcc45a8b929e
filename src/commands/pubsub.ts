/**
 * PUBLISH, and nothing else of pub/sub. Subscribing is not supported (README, "Not supported, on
 * purpose"), so no client here can ever be subscribed and PUBLISH's true answer is always 0
 * receivers — what Redis answers when nobody listens. Libraries publish a notification next to a
 * write, inside one MULTI (celery's Redis result backend does SETEX + PUBLISH): were PUBLISH
 * unknown, that EXEC would abort and the write would be lost.
 */
import { defineCommand } from './define.js';
import type { CommandSpec } from './types.js';

export const pubsubCommands: CommandSpec[] = [
  defineCommand({
    name: 'publish',
    group: 'pubsub',
    summary: 'Post a message to a channel',
    complexity:
      'O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client).',
    since: '2.0.0',
    arity: 3,
    flags: ['pubsub', 'loading', 'stale', 'fast'],
    handler: () => 0,
  }),
];
