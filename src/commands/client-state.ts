/**
 * Commands that change how the server treats one connection or all of them: CLIENT REPLY,
 * CLIENT PAUSE / UNPAUSE, CLIENT NO-EVICT, CLIENT NO-TOUCH (subcommands of CLIENT, listed in
 * connection.ts), RESET and MONITOR. The connection and the dispatcher act on the state they set.
 */
import { ErrorReply, NO_REPLY, OK, SimpleString, type Reply } from '../protocol/reply.js';
import { keyword, parseInt64 } from './args.js';
import { defineCommand } from './define.js';
import { SYNTAX_ERROR } from './errors.js';
import type { CommandContext, CommandSpec } from './types.js';

const RESET = new SimpleString('RESET');

/** CLIENT REPLY ON|OFF|SKIP: the connection drops replies as ClientState.reply says. */
function clientReply({ client }: CommandContext, args: Buffer[]): Reply {
  switch (keyword(args[2])) {
    case 'on':
      client.reply = 'on';
      return OK;
    case 'off':
      client.reply = 'off';
      return NO_REPLY;
    case 'skip':
      if (client.reply !== 'off') client.reply = 'skip-next';
      return NO_REPLY;
    default:
      return SYNTAX_ERROR;
  }
}

/** CLIENT PAUSE timeout [WRITE|ALL]: the mode is checked before the timeout, as Redis does. */
function clientPause({ server, now }: CommandContext, args: Buffer[]): Reply {
  // Redis' CLIENT matches PAUSE only with 3 or 4 words; more falls through to its catch-all error.
  if (args.length > 4) {
    return new ErrorReply(`ERR unknown subcommand or wrong number of arguments for '${args[1].toString('latin1')}'. Try CLIENT HELP.`);
  }
  let mode: 'write' | 'all' = 'all';
  if (args.length === 4) {
    const m = keyword(args[3]);
    if (m !== 'write' && m !== 'all') return new ErrorReply('ERR CLIENT PAUSE mode must be WRITE or ALL');
    mode = m;
  }
  const timeout = parseInt64(args[2]);
  if (timeout === null) return new ErrorReply('ERR timeout is not an integer or out of range');
  if (timeout < 0n) return new ErrorReply('ERR timeout is negative');
  // A timeout of 0 ends at once (Redis stores an end time of 0).
  if (timeout > 0n) server.pause.pause(now + Number(timeout), mode, now);
  return OK;
}

/** ON|OFF flags that only record the client's wish (NO-EVICT, NO-TOUCH). */
function onOff(set: (ctx: CommandContext, on: boolean) => void) {
  return (ctx: CommandContext, args: Buffer[]): Reply => {
    const v = keyword(args[2]);
    if (v !== 'on' && v !== 'off') return SYNTAX_ERROR;
    set(ctx, v === 'on');
    return OK;
  };
}

/** Redis' clearClientConnectionState: back to a fresh connection's state (RESP2, db 0, no name…). */
function reset({ client, server }: CommandContext): Reply {
  if (client.monitor) {
    server.monitors.remove(client);
    client.monitor = false;
  }
  client.db = 0;
  client.proto = 2;
  client.authenticated = !server.auth.required;
  client.tx?.discard();
  client.name = '';
  // REPLY OFF and a pending SKIP are cleared; a SKIP of this very command still holds.
  if (client.reply === 'off' || client.reply === 'skip-next') client.reply = 'on';
  return RESET;
}

function monitor({ client, server }: CommandContext): Reply {
  if (client.tx?.executing === true) return new ErrorReply("ERR MONITOR isn't allowed for DENY BLOCKING client");
  if (client.monitor) return NO_REPLY;
  if (client.push === undefined) return new ErrorReply('ERR MONITOR needs a connection');
  client.monitor = true;
  server.monitors.add(client);
  return OK;
}

/** The CLIENT subcommands of this module, added to CLIENT's list in connection.ts. */
export const clientStateSubcommands: CommandSpec[] = [
  defineCommand({
    name: 'client|reply',
    group: 'connection',
    summary: 'Instruct the server whether to reply to commands',
    complexity: 'O(1)',
    since: '3.2.0',
    arity: 3,
    flags: ['noscript', 'loading', 'stale'],
    categories: ['connection'],
    handler: clientReply,
  }),
  defineCommand({
    name: 'client|pause',
    group: 'connection',
    summary: 'Stop processing commands from clients for some time',
    complexity: 'O(1)',
    since: '2.9.50',
    arity: -3,
    flags: ['admin', 'noscript', 'loading', 'stale'],
    categories: ['connection'],
    handler: clientPause,
  }),
  defineCommand({
    name: 'client|unpause',
    group: 'connection',
    summary: 'Resume processing of clients that were paused',
    complexity: 'O(N) Where N is the number of paused clients',
    since: '6.2.0',
    arity: 2,
    flags: ['admin', 'noscript', 'loading', 'stale'],
    categories: ['connection'],
    handler: ({ server }) => {
      server.pause.unpause();
      return OK;
    },
  }),
  defineCommand({
    name: 'client|no-evict',
    group: 'connection',
    summary: 'Set client eviction mode for the current connection',
    complexity: 'O(1)',
    since: '7.0.0',
    arity: 3,
    flags: ['admin', 'noscript', 'loading', 'stale'],
    categories: ['connection'],
    handler: onOff(({ client }, on) => (client.noEvict = on)),
  }),
  defineCommand({
    name: 'client|no-touch',
    group: 'connection',
    summary: 'Controls whether commands sent by the client affect the LRU/LFU of accessed keys.',
    complexity: 'O(1)',
    since: '7.2.0',
    arity: 3,
    flags: ['noscript', 'loading', 'stale'],
    categories: ['connection'],
    handler: onOff(({ client }, on) => (client.noTouch = on)),
  }),
];

export const clientStateCommands: CommandSpec[] = [
  defineCommand({
    name: 'reset',
    group: 'connection',
    summary: 'Reset the connection',
    complexity: 'O(1)',
    since: '6.2.0',
    arity: 1,
    flags: ['noscript', 'loading', 'stale', 'fast', 'no_auth', 'allow_busy'],
    categories: ['connection'],
    handler: reset,
  }),
  defineCommand({
    name: 'monitor',
    group: 'server',
    summary: 'Listen for all requests received by the server in real time',
    since: '1.0.0',
    arity: 1,
    flags: ['admin', 'noscript', 'loading', 'stale'],
    handler: monitor,
  }),
];
