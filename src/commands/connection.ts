/** Connection commands that clients send on their own: AUTH, PING, ECHO, QUIT, SELECT, HELLO, CLIENT. */
import { ErrorReply, OK, PONG, RespMap, Verbatim, type Reply } from '../protocol/reply.js';
import { AUTH_WITHOUT_PASSWORD_TEXT, HELLO_NOAUTH_TEXT, WRONGPASS_TEXT } from '../server/security.js';
import { parseInteger } from './args.js';
import { NOT_INTEGER, SYNTAX_ERROR, wrongArity } from './errors.js';
import { containerHelp } from './help.js';
import { defineCommand } from './define.js';
import { clientStateSubcommands } from './client-state.js';
import type { ClientState, CommandContext, CommandSpec } from './types.js';

const WRONGPASS = new ErrorReply(WRONGPASS_TEXT);
const DEFAULT_USER = Buffer.from('default');

export const connectionCommands: CommandSpec[] = [
  defineCommand({
    name: 'auth',
    group: 'connection',
    summary: 'Authenticate to the server',
    complexity: 'O(N) where N is the number of passwords defined for the user',
    since: '1.0.0',
    arity: -2,
    // no_auth: the one command table flag that lets a command run before the client authenticates.
    flags: ['noscript', 'loading', 'stale', 'fast', 'no_auth', 'allow_busy'],
    categories: ['connection'],
    handler: auth,
  }),
  defineCommand({
    name: 'ping',
    group: 'connection',
    summary: 'Ping the server',
    complexity: 'O(1)',
    since: '1.0.0',
    arity: -1,
    flags: ['fast'],
    categories: ['connection'],
    tips: ['request_policy:all_shards', 'response_policy:all_succeeded'],
    handler: (_ctx, args) => {
      if (args.length > 2) return wrongArity('ping');
      return args.length === 2 ? args[1] : PONG;
    },
  }),
  defineCommand({
    name: 'echo',
    group: 'connection',
    summary: 'Echo the given string',
    complexity: 'O(1)',
    since: '1.0.0',
    arity: 2,
    flags: ['loading', 'stale', 'fast'],
    categories: ['connection'],
    handler: (_ctx, args) => args[1],
  }),
  defineCommand({
    name: 'quit',
    group: 'connection',
    summary: 'Close the connection',
    complexity: 'O(1)',
    since: '1.0.0',
    arity: -1,
    flags: ['allow_busy', 'noscript', 'loading', 'stale', 'fast', 'no_auth'],
    categories: ['connection'],
    handler: ({ client }) => {
      client.closeAfterReply = true;
      return OK;
    },
  }),
  defineCommand({
    name: 'select',
    group: 'connection',
    summary: 'Change the selected database for the current connection',
    complexity: 'O(1)',
    since: '1.0.0',
    arity: 2,
    flags: ['loading', 'stale', 'fast'],
    categories: ['connection'],
    handler: (_ctx, args) => {
      const index = parseInteger(args[1]);
      if (index === null) return NOT_INTEGER;
      // One database: the blob store has no numbered databases.
      if (index !== 0) return new ErrorReply('ERR DB index is out of range');
      return OK;
    },
  }),
  defineCommand({
    name: 'hello',
    group: 'connection',
    summary: 'Handshake with Redis',
    complexity: 'O(1)',
    since: '6.0.0',
    arity: -1,
    flags: ['noscript', 'loading', 'stale', 'fast', 'no_auth', 'allow_busy'],
    categories: ['connection'],
    handler: hello,
  }),
  defineCommand({
    name: 'client',
    group: 'connection',
    summary: 'A container for client connection commands',
    complexity: 'Depends on subcommand.',
    since: '2.4.0',
    arity: -2,
    flags: [],
    handler: () => SYNTAX_ERROR, // never called: the dispatcher routes to a subcommand
    subcommands: [
      defineCommand({
        name: 'client|id',
        group: 'connection',
        summary: 'Returns the client ID for the current connection',
        complexity: 'O(1)',
        since: '5.0.0',
        arity: 2,
        flags: ['noscript', 'loading', 'stale'],
        categories: ['connection'],
        handler: ({ client }) => client.id,
      }),
      defineCommand({
        name: 'client|getname',
        group: 'connection',
        summary: 'Get the current connection name',
        complexity: 'O(1)',
        since: '2.6.9',
        arity: 2,
        flags: ['noscript', 'loading', 'stale'],
        categories: ['connection'],
        handler: ({ client }) =>
        client.name === '' ? null : client.name,
      }),
      defineCommand({
        name: 'client|setname',
        group: 'connection',
        summary: 'Set the current connection name',
        complexity: 'O(1)',
        since: '2.6.9',
        arity: 3,
        flags: ['noscript', 'loading', 'stale'],
        categories: ['connection'],
        handler: ({ client }, args) => {
        const name = args[2].toString('latin1');
        if (!validClientText(name)) {
          return new ErrorReply('ERR Client names cannot contain spaces, newlines or special characters.');
        }
        client.name = name;
        return OK;
      },
      }),
      defineCommand({
        name: 'client|setinfo',
        group: 'connection',
        summary: 'Sets information specific to the client or connection.',
        complexity: 'O(1)',
        since: '7.2.0',
        arity: 4,
        flags: ['noscript', 'loading', 'stale'],
        categories: ['connection'],
        tips: ['request_policy:all_nodes', 'response_policy:all_succeeded'],
        handler: ({ client }, args) => {
        const attr = args[2].toString('latin1').toLowerCase();
        const value = args[3].toString('latin1');
        if (attr !== 'lib-name' && attr !== 'lib-ver') {
          return new ErrorReply(`ERR Unrecognized option '${args[2].toString('latin1')}'`);
        }
        if (!validClientText(value)) {
          return new ErrorReply(`ERR ${attr} cannot contain spaces, newlines or special characters.`);
        }
        if (attr === 'lib-name') client.libName = value;
        else client.libVer = value;
        return OK;
      },
      }),
      defineCommand({
        name: 'client|info',
        group: 'connection',
        summary: 'Returns information about the current client connection.',
        complexity: 'O(1)',
        since: '6.2.0',
        arity: 2,
        flags: ['noscript', 'loading', 'stale'],
        categories: ['connection'],
        tips: ['nondeterministic_output'],
        handler: ({ client, now }) => new Verbatim(`${clientLine(client, now)}\n`),
      }),
      defineCommand({
        name: 'client|list',
        group: 'connection',
        summary: 'Get the list of client connections',
        complexity: 'O(N) where N is the number of client connections',
        since: '2.4.0',
        arity: -2,
        flags: ['admin', 'noscript', 'loading', 'stale'],
        categories: ['connection'],
        tips: ['nondeterministic_output'],
        handler: clientList,
      }),
      defineCommand({
        name: 'client|kill',
        group: 'connection',
        summary: 'Kill the connection of a client',
        complexity: 'O(N) where N is the number of client connections',
        since: '2.4.0',
        arity: -3,
        flags: ['admin', 'noscript', 'loading', 'stale'],
        categories: ['connection'],
        handler: clientKill,
      }),
      defineCommand({
        name: 'client|help',
        group: 'connection',
        summary: 'Show helpful text about the different subcommands',
        complexity: 'O(1)',
        since: '5.0.0',
        arity: 2,
        flags: ['loading', 'stale'],
        categories: ['connection'],
        handler: (ctx) =>
        containerHelp(ctx, 'client'),
      }),
      // CLIENT REPLY, PAUSE, UNPAUSE, NO-EVICT, NO-TOUCH (client-state.ts).
      ...clientStateSubcommands,
    ],
  }),
];

/** AUTH [username] password: "default" is the only user; a failure leaves the client as it was. */
function auth({ client, server }: CommandContext, args: Buffer[]): Reply {
  if (args.length > 3) return SYNTAX_ERROR;
  if (args.length === 2 && !server.auth.required) return new ErrorReply(AUTH_WITHOUT_PASSWORD_TEXT);
  const user = args.length === 3 ? args[1] : DEFAULT_USER;
  if (!server.auth.verify(user, args[args.length - 1])) return WRONGPASS;
  client.authenticated = true;
  return OK;
}

/** HELLO [protover [AUTH username password] [SETNAME clientname]] */
function hello({ client, server }: CommandContext, args: Buffer[]): Reply {
  let proto = client.proto;
  let i = 1;
  if (args.length > 1) {
    const v = parseInteger(args[1]);
    if (v === null) return new ErrorReply('ERR Protocol version is not an integer or out of range');
    if (v !== 2 && v !== 3) return new ErrorReply('NOPROTO unsupported protocol version');
    proto = v;
    i = 2;
  }
  let setName: string | null = null;
  for (; i < args.length; i++) {
    const opt = args[i].toString('latin1').toLowerCase();
    const left = args.length - i - 1;
    if (opt === 'auth' && left >= 2) {
      // As in Redis, a good AUTH takes effect here even if a later option is refused.
      if (!server.auth.verify(args[i + 1], args[i + 2])) return WRONGPASS;
      client.authenticated = true;
      i += 2;
    } else if (opt === 'setname' && left >= 1) {
      setName = args[++i].toString('latin1');
      if (!validClientText(setName)) {
        return new ErrorReply('ERR Client names cannot contain spaces, newlines or special characters.');
      }
    } else {
      return new ErrorReply(`ERR Syntax error in HELLO option '${args[i].toString('latin1')}'`);
    }
  }
  if (!client.authenticated) return new ErrorReply(HELLO_NOAUTH_TEXT);
  client.proto = proto;
  if (setName !== null) client.name = setName;
  return new RespMap([
    ['server', 'redis'],
    ['version', server.version],
    ['proto', proto],
    ['id', client.id],
    ['mode', server.cluster === undefined ? 'standalone' : 'cluster'],
    ['role', 'master'],
    ['modules', []],
  ]);
}

function clientList({ server, now }: CommandContext, args: Buffer[]): Reply {
  let ids: Set<number> | null = null;
  for (let i = 2; i < args.length; i++) {
    const opt = args[i].toString('latin1').toLowerCase();
    if (opt === 'type' && i + 1 < args.length) {
      const type = args[++i].toString('latin1').toLowerCase();
      if (!['normal', 'master', 'replica', 'pubsub'].includes(type)) {
        return new ErrorReply(`ERR Unknown client type '${args[i].toString('latin1')}'`);
      }
      if (type !== 'normal') ids = new Set();
    } else if (opt === 'id' && i + 1 < args.length) {
      ids ??= new Set();
      for (i++; i < args.length; i++) {
        const id = parseInteger(args[i]);
        if (id === null || id <= 0) return new ErrorReply('ERR Invalid client ID');
        ids.add(id);
      }
    } else {
      return SYNTAX_ERROR;
    }
  }
  let out = '';
  for (const c of server.clients()) if (ids === null || ids.has(c.id)) out += `${clientLine(c, now)}\n`;
  return new Verbatim(out);
}

/**
 * CLIENT KILL addr (old form: +OK or "No such client"), or CLIENT KILL <filter> <value> … (new
 * form: the number killed) with ID, ADDR, LADDR, USER, TYPE, SKIPME (default yes) and MAXAGE
 * (Redis 7.4: older than that many seconds). The asking client, when killed, gets its reply first.
 */
function clientKill({ server, client, now }: CommandContext, args: Buffer[]): Reply {
  const text = (b: Buffer): string => b.toString('latin1');
  if (args.length === 3) {
    const addr = text(args[2]);
    for (const c of server.clients()) {
      if (c.addr !== addr) continue;
      server.killClient(c.id, c.id === client.id);
      return OK;
    }
    return new ErrorReply('ERR No such client');
  }
  let id: number | null = null;
  let addr: string | null = null;
  let laddr: string | null = null;
  let normal = true;
  let skipme = true;
  let maxAge = 0;
  for (let i = 2; i < args.length; i += 2) {
    const opt = text(args[i]).toLowerCase();
    if (i + 1 >= args.length) return SYNTAX_ERROR;
    const value = args[i + 1];
    if (opt === 'id') {
      const n = parseInteger(value);
      if (n === null || n < 1) return new ErrorReply('ERR client-id should be greater than 0');
      id = n;
    } else if (opt === 'type') {
      const type = text(value).toLowerCase();
      if (!['normal', 'master', 'slave', 'replica', 'pubsub'].includes(type)) return new ErrorReply(`ERR Unknown client type '${text(value)}'`);
      // Every client here is a normal one: no replicas, no pub/sub.
      normal = type === 'normal';
    } else if (opt === 'addr') {
      addr = text(value);
    } else if (opt === 'laddr') {
      laddr = text(value);
    } else if (opt === 'user') {
      if (!value.equals(DEFAULT_USER)) return new ErrorReply(`ERR No such user '${text(value)}'`);
    } else if (opt === 'skipme') {
      const yn = text(value).toLowerCase();
      if (yn !== 'yes' && yn !== 'no') return SYNTAX_ERROR;
      skipme = yn === 'yes';
    } else if (opt === 'maxage') {
      const n = parseInteger(value);
      if (n === null) return new ErrorReply('ERR maxage is not an integer or out of range');
      maxAge = n;
    } else {
      return SYNTAX_ERROR;
    }
  }
  const victims: ClientState[] = [];
  for (const c of server.clients()) {
    if (!normal || (id !== null && c.id !== id) || (addr !== null && c.addr !== addr) || (laddr !== null && c.laddr !== laddr)) continue;
    if (maxAge > 0 && Math.floor((now - c.createdAt) / 1000) <= maxAge) continue;
    if (skipme && c.id === client.id) continue;
    victims.push(c);
  }
  // Collected first: closing a client removes it from the registry being walked.
  for (const c of victims) server.killClient(c.id, c.id === client.id);
  return victims.length;
}

/**
 * One CLIENT LIST line, with Redis 7.2's field names and order. Memory fields are this server's
 * real numbers: qbuf (bytes of an unfinished command), argv-mem (commands read, not yet run), omem
 * (replies owed: unsent or parked), tot-mem (their sum; Redis adds its client struct, we add
 * nothing). Fields that have no meaning here are Redis' idle values (fd=-1, sub=0, rbs=0…).
 */
export function clientLine(c: ClientState, now: number): string {
  const multi = c.tx?.queued ?? null;
  // Redis' mstate.argv_len_sums: the queued arguments plus one pointer (8 bytes) per argument.
  let multiMem = 0;
  for (const q of multi ?? []) for (const a of q.args) multiMem += a.length + 8;
  return [
    `id=${c.id}`,
    `addr=${c.addr}`,
    `laddr=${c.laddr}`,
    'fd=-1',
    `name=${c.name}`,
    `age=${Math.floor((now - c.createdAt) / 1000)}`,
    `idle=${Math.floor((now - c.lastInteraction) / 1000)}`,
    `flags=${clientFlags(c)}`,
    `db=${c.db}`,
    `sub=0 psub=0 ssub=0 multi=${multi === null ? -1 : multi.length}`,
    `qbuf=${c.queryBufferBytes}`,
    'qbuf-free=0',
    `argv-mem=${c.argvBytes}`,
    `multi-mem=${multiMem} rbs=0 rbp=0 obl=0 oll=0`,
    `omem=${c.backlog}`,
    `tot-mem=${c.queryBufferBytes + c.argvBytes + multiMem + c.backlog}`,
    'events=r',
    `cmd=${c.lastCommand}`,
    'user=default redir=-1',
    `resp=${c.proto}`,
    `lib-name=${c.libName}`,
    `lib-ver=${c.libVer}`,
  ].join(' ');
}

/**
 * CLIENT LIST's flags letters in Redis 7.2's order (catClientInfoString), for the states this
 * server has: O (MONITOR) / S (a replica streaming from this primary), x (in MULTI), b (a command
 * held by CLIENT PAUSE or waiting for write room), d (a watched key was touched), c (closing after
 * its reply), e (CLIENT NO-EVICT), T (CLIENT NO-TOUCH); N when none. M (our own link to a primary)
 * is an outgoing connection, not a client here; P (pub/sub), t/R/B (tracking), r (READONLY) have
 * no state here.
 */
export function clientFlags(c: ClientState): string {
  let f = '';
  if (c.monitor) f += 'O';
  else if (c.replica === true) f += 'S';
  if (c.tx?.inMulti === true) f += 'x';
  if (c.blocked === true) f += 'b';
  if (c.tx?.touched === true) f += 'd';
  if (c.closeAfterReply) f += 'c';
  if (c.noEvict) f += 'e';
  if (c.noTouch) f += 'T';
  return f === '' ? 'N' : f;
}

/** Redis allows only printable ASCII without spaces in client names and library info. */
function validClientText(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}
