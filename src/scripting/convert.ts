/**
 * Redis' conversions between command replies and Lua values (script_lua.c: redisProtocolToLuaType
 * and luaReplyToRedisReply), for RESP2 and, after redis.setresp(3), RESP3.
 */
import fengari, { type LuaState } from 'fengari';
import {
  ErrorReply,
  NO_REPLY,
  NULL_ARRAY,
  RespBoolean,
  RespDouble,
  RespMap,
  RespSet,
  SimpleString,
  Verbatim,
  type Reply,
} from '../protocol/reply.js';
import { formatG } from './lua-libs.js';
import { normalizeError } from './lua-vm.js';

const { lua, to_luastring } = fengari;

/** Nesting beyond this in a script's reply is refused (a table that contains itself). */
const MAX_DEPTH = 1000;

function setField(L: LuaState, name: string): void {
  lua.lua_setfield(L, -2, to_luastring(name));
}

function luaString(s: Buffer | string): Uint8Array {
  return typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
}

/** Pushes a command's reply as the Lua value Redis gives the script. */
export function pushReply(L: LuaState, reply: Reply, resp: 2 | 3): void {
  if (reply === null || reply === NULL_ARRAY || reply === NO_REPLY) {
    if (resp === 2) lua.lua_pushboolean(L, false);
    else lua.lua_pushnil(L);
  } else if (typeof reply === 'number') {
    lua.lua_pushinteger(L, reply);
  } else if (typeof reply === 'string' || reply instanceof Buffer) {
    lua.lua_pushstring(L, luaString(reply));
  } else if (reply instanceof SimpleString) {
    lua.lua_newtable(L);
    lua.lua_pushstring(L, luaString(reply.value));
    setField(L, 'ok');
  } else if (reply instanceof ErrorReply) {
    lua.lua_newtable(L);
    lua.lua_pushstring(L, luaString(reply.message));
    setField(L, 'err');
  } else if (Array.isArray(reply)) {
    const items = reply as readonly Reply[];
    lua.lua_createtable(L, items.length, 0);
    for (let i = 0; i < items.length; i++) {
      pushReply(L, items[i], resp);
      lua.lua_rawseti(L, -2, i + 1);
    }
  } else if (reply instanceof RespMap) {
    if (resp === 2) {
      pushReply(L, reply.entries.flat(), resp);
      return;
    }
    lua.lua_newtable(L);
    lua.lua_createtable(L, 0, reply.entries.length);
    for (const [k, v] of reply.entries) {
      pushReply(L, k, resp);
      pushReply(L, v, resp);
      lua.lua_rawset(L, -3);
    }
    setField(L, 'map');
  } else if (reply instanceof RespSet) {
    if (resp === 2) {
      pushReply(L, reply.items, resp);
      return;
    }
    lua.lua_newtable(L);
    lua.lua_createtable(L, 0, reply.items.length);
    for (const item of reply.items) {
      pushReply(L, item, resp);
      lua.lua_pushboolean(L, true);
      lua.lua_rawset(L, -3);
    }
    setField(L, 'set');
  } else if (reply instanceof Verbatim) {
    if (resp === 2) {
      lua.lua_pushstring(L, luaString(reply.text));
      return;
    }
    lua.lua_newtable(L);
    lua.lua_newtable(L);
    lua.lua_pushliteral(L, 'txt');
    setField(L, 'format');
    lua.lua_pushstring(L, luaString(reply.text));
    setField(L, 'string');
    setField(L, 'verbatim_string');
  } else if (reply instanceof RespBoolean) {
    if (resp === 2) lua.lua_pushinteger(L, reply.value ? 1 : 0);
    else lua.lua_pushboolean(L, reply.value);
  } else if (reply instanceof RespDouble) {
    if (resp === 2) {
      lua.lua_pushstring(L, luaString(reply.text));
      return;
    }
    lua.lua_newtable(L);
    lua.lua_pushnumber(L, Number(reply.text));
    setField(L, 'double');
  } else {
    lua.lua_pushnil(L);
  }
}

/** The string at a table's field, or null when it is not a string. */
function stringField(L: LuaState, idx: number, name: string): Uint8Array | null {
  lua.lua_getfield(L, idx, to_luastring(name));
  const s = lua.lua_type(L, -1) === lua.LUA_TSTRING ? lua.lua_tolstring(L, -1) : null;
  lua.lua_pop(L, 1);
  return s;
}

/**
 * The Lua value at `idx` as the reply Redis sends the client. `resp` is the script's
 * redis.setresp() version: under 3, booleans and doubles keep their RESP3 types.
 */
export function toReply(L: LuaState, idx: number, resp: 2 | 3, depth = 0): Reply {
  idx = lua.lua_absindex(L, idx);
  switch (lua.lua_type(L, idx)) {
    case lua.LUA_TSTRING:
      return Buffer.from(lua.lua_tolstring(L, idx)!);
    case lua.LUA_TBOOLEAN:
      if (resp === 3) return new RespBoolean(lua.lua_toboolean(L, idx));
      return lua.lua_toboolean(L, idx) ? 1 : null;
    case lua.LUA_TNUMBER:
      return lua.lua_isinteger(L, idx) ? lua.lua_tointeger(L, idx) : Math.trunc(lua.lua_tonumber(L, idx));
    case lua.LUA_TTABLE:
      break;
    default:
      return null;
  }
  if (depth >= MAX_DEPTH) return new ErrorReply('ERR reached lua stack limit');
  const err = stringField(L, idx, 'err');
  if (err !== null) return new ErrorReply(Buffer.from(err).toString('utf8'));
  const ok = stringField(L, idx, 'ok');
  if (ok !== null) return new SimpleString(Buffer.from(ok).toString('utf8').replace(/[\r\n]/g, ' '));
  lua.lua_getfield(L, idx, to_luastring('double'));
  if (lua.lua_type(L, -1) === lua.LUA_TNUMBER) {
    const d = lua.lua_tonumber(L, -1);
    lua.lua_pop(L, 1);
    return new RespDouble(formatG(d, 17));
  }
  lua.lua_pop(L, 1);
  const big = stringField(L, idx, 'big_number');
  if (big !== null) return Buffer.from(big);
  lua.lua_getfield(L, idx, to_luastring('map'));
  if (lua.lua_type(L, -1) === lua.LUA_TTABLE) {
    const entries: [Reply, Reply][] = [];
    lua.lua_pushnil(L);
    while (lua.lua_next(L, -2)) {
      entries.push([toReply(L, -2, resp, depth + 1), toReply(L, -1, resp, depth + 1)]);
      lua.lua_pop(L, 1);
    }
    lua.lua_pop(L, 1);
    return new RespMap(entries);
  }
  lua.lua_pop(L, 1);
  lua.lua_getfield(L, idx, to_luastring('set'));
  if (lua.lua_type(L, -1) === lua.LUA_TTABLE) {
    const items: Reply[] = [];
    lua.lua_pushnil(L);
    while (lua.lua_next(L, -2)) {
      lua.lua_pop(L, 1);
      items.push(toReply(L, -1, resp, depth + 1));
    }
    lua.lua_pop(L, 1);
    return new RespSet(items);
  }
  lua.lua_pop(L, 1);
  const out: Reply[] = [];
  for (let i = 1; ; i++) {
    if (lua.lua_rawgeti(L, idx, i) === lua.LUA_TNIL) {
      lua.lua_pop(L, 1);
      break;
    }
    const item = toReply(L, -1, resp, depth + 1);
    lua.lua_pop(L, 1);
    if (item instanceof ErrorReply && item.message === 'ERR reached lua stack limit') return item;
    out.push(item);
  }
  return out;
}

/**
 * The error reply for a failed script, from the error table Redis' error handler builds
 * ({err, source, line}): "<err> script: <name>, on <source>:<line>."
 */
export function scriptError(L: LuaState, idx: number, name: string): ErrorReply {
  idx = lua.lua_absindex(L, idx);
  if (lua.lua_type(L, idx) !== lua.LUA_TTABLE) {
    const s = lua.lua_tolstring(L, idx);
    return new ErrorReply(`ERR Error running script ${name}, ${s === null ? 'execution failure' : Buffer.from(s).toString('utf8').slice(0, 100)}`);
  }
  const err = stringField(L, idx, 'err');
  let msg = err === null ? 'ERR unknown error' : normalizeCode(Buffer.from(err).toString('utf8'));
  const source = stringField(L, idx, 'source');
  lua.lua_getfield(L, idx, to_luastring('line'));
  const line = lua.lua_type(L, -1) === lua.LUA_TNUMBER ? lua.lua_tointeger(L, -1) : null;
  lua.lua_pop(L, 1);
  if (source !== null && line !== null) msg += ` script: ${name}, on ${Buffer.from(source).toString('utf8')}:${line}.`;
  return new ErrorReply(msg);
}

/** An error text as an error reply needs it: a leading '-' dropped. */
function normalizeCode(s: string): string {
  return s.startsWith('-') ? normalizeError(s) : s;
}
