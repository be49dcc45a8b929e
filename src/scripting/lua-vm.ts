/**
 * One sandboxed Lua VM (fengari, Lua 5.3) set up as Redis 7 sets up its scripting VM: the base,
 * table, string and math libraries plus bit, cjson, cmsgpack and struct; Lua 5.1 names scripts
 * rely on (unpack, table.getn, loadstring, math.mod); no io, os, package, require, dofile,
 * loadfile or debug; globals read-only with Redis' error texts; binary chunks refused.
 *
 * The `redis` table's functions call back into a ScriptHost (the engine), which is set for the
 * duration of a run.
 */
import { createHash } from 'node:crypto';
import fengari, { type JsFunction, type LuaState } from 'fengari';
import { openBit, openCjson, openCmsgpack } from './lua-libs.js';
import { switchThread } from './memory-guard.js';
import { isReadonly, protectRecursively, READONLY_MESSAGE, setReadonly } from './readonly-tables.js';

const { lua, lauxlib, lualib, to_luastring } = fengari;

/** Log levels of redis.log, as Redis numbers them. */
export const LOG_LEVELS = ['debug', 'verbose', 'notice', 'warning'] as const;

/** What the `redis` table needs from the engine. Each function works on the Lua stack. */
export interface ScriptHost {
  /** redis.call (raise) / redis.pcall: arguments at 1..top; pushes one result. */
  call(L: LuaState, raise: boolean): number;
  setResp(version: 2 | 3): void;
  log(level: (typeof LOG_LEVELS)[number], message: string): void;
  /** redis.register_function, only while a library loads. */
  registerFunction(L: LuaState): number;
}

/** The chunk name of the prelude: frames from it are not the script's own (error positions). */
const PRELUDE_NAME = '=blobasaur';

const PRELUDE = `
local G = _G
local getinfo = debug.getinfo
local error, rawget, tostring, type, setmetatable, xpcall, load = error, rawget, tostring, type, setmetatable, xpcall, load

-- Redis' __redis__err__handler: a string error becomes {err='ERR ...'}, and the position of the
-- script's own frame is attached (frames of C functions and of this prelude are skipped).
local function handler(err)
  local level, i = 2, nil
  repeat
    i = getinfo(level, 'nSl')
    level = level + 1
  until i == nil or ((i.what == 'Lua' or i.what == 'main') and i.source ~= '${PRELUDE_NAME}')
  if type(err) ~= 'table' then err = {err = 'ERR ' .. tostring(err)} end
  if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end

-- The globals table itself is the scripts' environment, made read-only after this prelude
-- (LuaVm.protect), as Redis' scriptingInit does.
local env = G

unpack = table.unpack
table.getn = function(t) return #t end
math.mod = math.fmod
math.pow = function(x, y) return x ^ y end
string.gfind = string.gmatch
loadstring = function(s, name) return load(s, name, 't', env) end
G.load = function(s, name, mode, e) return load(s, name, 't', e or env) end

-- struct (Roberto's library) on string.pack: 's' is its zero-terminated string.
local spack, sunpack, ssize = string.pack, string.unpack, string.packsize
local function sfmt(f) return (f:gsub('s', 'z')) end
struct = {
  pack = function(f, ...) return spack(sfmt(f), ...) end,
  unpack = function(f, s, pos) return sunpack(sfmt(f), s, pos) end,
  size = function(f) return ssize(sfmt(f)) end,
}

-- coroutine.wrap resumes through coroutine.resume (which LuaVm wraps so that the memory guard
-- knows the running thread); errors propagate as Lua 5.3's auxwrap propagates them.
local coroutine = coroutine
coroutine.wrap = function(f)
  local co = coroutine.create(f)
  return function(...)
    local r = table.pack(coroutine.resume(co, ...))
    if not r[1] then error(r[2], 2) end
    return table.unpack(r, 2, r.n)
  end
end

dofile, loadfile, require, print, debug = nil, nil, nil, nil, nil

return {
  env = env,
  run = function(fn, ...) return xpcall(fn, handler, ...) end,
  -- The globals of FUNCTION libraries, as Redis 7.0's (function_lua.c): one table whose metatable's
  -- __index is, while FUNCTION LOAD runs a library's body, the library API (a 'redis' table with
  -- only register_function, log, the LOG_* levels and the version; anything else raises), and
  -- the full globals afterwards, when the functions run. LuaVm makes them read-only and switches.
  function_env = function(register)
    local src = G.redis
    local function missing(_, k) error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2) end
    local r = setmetatable({
      register_function = register, log = src.log,
      LOG_DEBUG = src.LOG_DEBUG, LOG_VERBOSE = src.LOG_VERBOSE, LOG_NOTICE = src.LOG_NOTICE, LOG_WARNING = src.LOG_WARNING,
      REDIS_VERSION = src.REDIS_VERSION, REDIS_VERSION_NUM = src.REDIS_VERSION_NUM,
    }, {__index = missing})
    local library_api = setmetatable({redis = r}, {__index = missing})
    local meta = {__index = G}
    return setmetatable({}, meta), meta, library_api
  end,
}
`;

export class LuaVm {
  readonly L: LuaState;
  /** Registry references of the prelude's env table and run function. */
  private readonly envRef: number;
  readonly runRef: number;
  /** The globals of FUNCTION libraries, their metatable and the library API (see the prelude). */
  private readonly functionEnvRef: number;
  private readonly functionMetaRef: number;
  private readonly libraryApiRef: number;
  host: ScriptHost | null = null;

  constructor(version: string) {
    const L = lauxlib.luaL_newstate();
    this.L = L;
    const libs: [string, JsFunction][] = [
      ['_G', lualib.luaopen_base],
      ['table', lualib.luaopen_table],
      ['string', lualib.luaopen_string],
      ['math', lualib.luaopen_math],
      ['coroutine', lualib.luaopen_coroutine],
      ['debug', lualib.luaopen_debug],
    ];
    for (const [name, open] of libs) {
      lauxlib.luaL_requiref(L, to_luastring(name), open, 1);
      lua.lua_pop(L, 1);
    }
    openBit(L);
    openCjson(L);
    openCmsgpack(L);
    this.installRedis(version);
    // A JavaScript exception inside the VM (an allocation failing) becomes a Lua error.
    lua.lua_atnativeerror(L, (L) => {
      const e = lua.lua_touserdata(L, -1);
      const msg = e instanceof RangeError ? 'not enough memory' : e instanceof Error ? e.message : String(e);
      lua.lua_pushstring(L, to_luastring(msg));
      return 1;
    });
    if (lauxlib.luaL_loadbuffer(L, to_luastring(PRELUDE), null, to_luastring(PRELUDE_NAME)) !== lua.LUA_OK) {
      throw new Error(`scripting prelude: ${this.popString()}`);
    }
    if (lua.lua_pcall(L, 0, 1, 0) !== lua.LUA_OK) throw new Error(`scripting prelude: ${this.popString()}`);
    lua.lua_getfield(L, -1, to_luastring('env'));
    this.envRef = lauxlib.luaL_ref(L, lua.LUA_REGISTRYINDEX);
    lua.lua_getfield(L, -1, to_luastring('run'));
    this.runRef = lauxlib.luaL_ref(L, lua.LUA_REGISTRYINDEX);
    this.protect();
    lua.lua_getfield(L, -1, to_luastring('function_env'));
    lua.lua_pushcfunction(L, (L) => this.hostOf().registerFunction(L));
    lua.lua_call(L, 1, 3);
    for (let i = -3; i <= -1; i++) protectRecursively(L, i);
    this.libraryApiRef = lauxlib.luaL_ref(L, lua.LUA_REGISTRYINDEX);
    this.functionMetaRef = lauxlib.luaL_ref(L, lua.LUA_REGISTRYINDEX);
    this.functionEnvRef = lauxlib.luaL_ref(L, lua.LUA_REGISTRYINDEX);
    lua.lua_pop(L, 1);
  }

  /**
   * Redis 7's sandbox: reading a missing global raises "Script attempted to access nonexistent
   * global variable", and the globals, every table reachable from them (string, redis, cjson…),
   * their metatables and the string metatable are read-only ("Attempt to modify a readonly
   * table"), so no script changes what the next one runs with.
   */
  private protect(): void {
    const L = this.L;
    // The memory guard raises its error on the running thread: coroutine.resume switches it.
    lua.lua_getglobal(L, to_luastring('coroutine'));
    lua.lua_getfield(L, -1, to_luastring('resume'));
    const resume = lua.lua_tocfunction(L, -1);
    lua.lua_pop(L, 1);
    if (resume === null) throw new Error('scripting prelude: no coroutine.resume');
    lua.lua_pushcfunction(L, (L) => {
      const co = lua.lua_tothread(L, 1);
      if (co === null) return resume(L);
      const previous = switchThread(co);
      try {
        return resume(L);
      } finally {
        if (previous !== null) switchThread(previous);
      }
    });
    lua.lua_setfield(L, -2, to_luastring('resume'));
    lua.lua_pop(L, 1);
    lua.lua_getglobal(L, to_luastring('setmetatable'));
    const setmetatable = lua.lua_tocfunction(L, -1);
    lua.lua_pop(L, 1);
    if (setmetatable === null) throw new Error('scripting prelude: no setmetatable');
    // lua_setmetatable stores the field directly; Redis' checks the readonly flag first.
    lua.lua_pushcfunction(L, (L) => {
      if (isReadonly(L, 1)) return raiseMessage(L, READONLY_MESSAGE);
      return setmetatable(L);
    });
    lua.lua_setglobal(L, to_luastring('setmetatable'));
    lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, lua.LUA_RIDX_GLOBALS);
    lua.lua_newtable(L);
    // Redis' luaProtectedTableError; its message carries the position of the script's line.
    lua.lua_pushcfunction(L, (L) => {
      const name = lua.lua_tolstring(L, 2);
      lauxlib.luaL_where(L, 1);
      const where = Buffer.from(lua.lua_tolstring(L, -1) ?? new Uint8Array(0)).toString('utf8');
      return raiseMessage(L, `${where}Script attempted to access nonexistent global variable '${name === null ? '?' : Buffer.from(name).toString('utf8')}'`);
    });
    lua.lua_setfield(L, -2, to_luastring('__index'));
    lua.lua_setmetatable(L, -2);
    protectRecursively(L, -1);
    lua.lua_pop(L, 1);
    lua.lua_pushstring(L, to_luastring(''));
    if (lua.lua_getmetatable(L, -1)) {
      protectRecursively(L, -1);
      lua.lua_pop(L, 1);
    }
    lua.lua_pop(L, 1);
  }

  /**
   * Compiles a script body as chunk `@<name>` whose globals are the read-only globals (or, for a
   * library, the functions' globals); returns a registry reference to the
   * function, or the compiler's message.
   */
  compile(body: Uint8Array, name: string, library = false): { ref: number } | { error: string } {
    const L = this.L;
    if (body.length > 0 && body[0] === 0x1b) return { error: `${name}: attempt to load a binary chunk` };
    if (lauxlib.luaL_loadbuffer(L, body, null, to_luastring(`@${name}`)) !== lua.LUA_OK) {
      // Lua 5.1 (Redis) quotes the end of the input: near '<eof>'.
      return { error: this.popString().replace(/ near <eof>$/, " near '<eof>'") };
    }
    if (library) {
      lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, this.functionEnvRef);
    } else {
      lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, this.envRef);
    }
    lua.lua_setupvalue(L, -2, 1);
    return { ref: lauxlib.luaL_ref(L, lua.LUA_REGISTRYINDEX) };
  }

  /**
   * While a library's body runs (FUNCTION LOAD), its globals are the library API; otherwise the
   * full globals (Redis' luaEngineCreate switches the same way).
   */
  libraryLoading(on: boolean): void {
    const L = this.L;
    lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, this.functionMetaRef);
    if (on) lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, this.libraryApiRef);
    else lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, lua.LUA_RIDX_GLOBALS);
    setReadonly(L, -2, false);
    lua.lua_setfield(L, -2, to_luastring('__index'));
    setReadonly(L, -1, true);
    lua.lua_pop(L, 1);
  }

  release(ref: number): void {
    lauxlib.luaL_unref(this.L, lua.LUA_REGISTRYINDEX, ref);
  }

  /** Sets KEYS or ARGV to a fresh array of strings. */
  setArray(name: 'KEYS' | 'ARGV', items: readonly Buffer[]): void {
    const L = this.L;
    lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, lua.LUA_RIDX_GLOBALS);
    lua.lua_createtable(L, items.length, 0);
    for (let i = 0; i < items.length; i++) {
      lua.lua_pushstring(L, items[i]);
      lua.lua_rawseti(L, -2, i + 1);
    }
    // As Redis: the globals' protection is lifted only while the engine sets them.
    setReadonly(L, -2, false);
    lua.lua_setfield(L, -2, to_luastring(name));
    setReadonly(L, -1, true);
    lua.lua_pop(L, 1);
  }

  private hostOf(): ScriptHost {
    if (this.host === null) throw new Error('no script is running');
    return this.host;
  }

  private popString(): string {
    const s = lua.lua_tolstring(this.L, -1);
    lua.lua_pop(this.L, 1);
    return s === null ? '?' : Buffer.from(s).toString('utf8');
  }

  private installRedis(version: string): void {
    const L = this.L;
    const fns: Record<string, JsFunction> = {
      call: (L) => this.hostOf().call(L, true),
      pcall: (L) => this.hostOf().call(L, false),
      error_reply: (L) => {
        if (lua.lua_gettop(L) !== 1 || lua.lua_type(L, -1) !== lua.LUA_TSTRING) return pushErrorTable(L, 'ERR wrong number or type of arguments');
        const s = Buffer.from(lua.lua_tolstring(L, -1)!).toString('latin1');
        return pushErrorTable(L, normalizeError(s.startsWith('-') ? s : `-${s}`));
      },
      status_reply: (L) => {
        if (lua.lua_gettop(L) !== 1 || lua.lua_type(L, -1) !== lua.LUA_TSTRING) return pushErrorTable(L, 'ERR wrong number or type of arguments');
        lua.lua_newtable(L);
        lua.lua_pushvalue(L, 1);
        lua.lua_setfield(L, -2, to_luastring('ok'));
        return 1;
      },
      sha1hex: (L) => {
        if (lua.lua_gettop(L) !== 1) {
          lua.lua_pushliteral(L, 'wrong number of arguments');
          return lua.lua_error(L);
        }
        const s = lua.lua_tolstring(L, 1) ?? new Uint8Array(0);
        lua.lua_pushstring(L, to_luastring(createHash('sha1').update(s).digest('hex')));
        return 1;
      },
      log: (L) => {
        const n = lua.lua_gettop(L);
        if (n < 2) return raiseErrorTable(L, 'ERR redis.log() requires two arguments or more.');
        if (lua.lua_type(L, 1) !== lua.LUA_TNUMBER) return raiseErrorTable(L, 'ERR First argument must be a number (log level).');
        const level = lua.lua_tointeger(L, 1);
        if (level < 0 || level > 3) return raiseErrorTable(L, 'ERR Invalid debug level.');
        const parts: string[] = [];
        for (let i = 2; i <= n; i++) {
          const s = lua.lua_tolstring(L, i);
          if (s !== null) parts.push(Buffer.from(s).toString('utf8'));
        }
        this.hostOf().log(LOG_LEVELS[level], parts.join(' '));
        return 0;
      },
      setresp: (L) => {
        if (lua.lua_gettop(L) !== 1) return raiseErrorTable(L, 'ERR redis.setresp() requires one argument.');
        const v = lua.lua_tointeger(L, -1);
        if (v !== 2 && v !== 3) return raiseErrorTable(L, 'ERR RESP version must be 2 or 3.');
        this.hostOf().setResp(v);
        return 0;
      },
      set_repl: (L) => {
        if (lua.lua_gettop(L) !== 1) return raiseErrorTable(L, 'ERR redis.set_repl() requires one argument.');
        const v = lua.lua_tointeger(L, -1);
        if (v < 0 || v > 3) return raiseErrorTable(L, 'ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.');
        return 0;
      },
      replicate_commands: (L) => (lua.lua_pushboolean(L, true), 1),
      breakpoint: (L) => (lua.lua_pushboolean(L, false), 1),
      debug: () => 0,
    };
    lua.lua_newtable(L);
    for (const [k, f] of Object.entries(fns)) {
      lua.lua_pushcfunction(L, f);
      lua.lua_setfield(L, -2, to_luastring(k));
    }
    const ints: Record<string, number> = {
      LOG_DEBUG: 0, LOG_VERBOSE: 1, LOG_NOTICE: 2, LOG_WARNING: 3,
      REPL_NONE: 0, REPL_AOF: 1, REPL_SLAVE: 2, REPL_REPLICA: 2, REPL_ALL: 3,
      REDIS_VERSION_NUM: versionNum(version),
    };
    for (const [k, v] of Object.entries(ints)) {
      lua.lua_pushinteger(L, v);
      lua.lua_setfield(L, -2, to_luastring(k));
    }
    lua.lua_pushstring(L, to_luastring(version));
    lua.lua_setfield(L, -2, to_luastring('REDIS_VERSION'));
    lua.lua_setglobal(L, to_luastring('redis'));
  }
}

function versionNum(v: string): number {
  const [a = 0, b = 0, c = 0] = v.split('.').map(Number);
  return (a << 16) | (b << 8) | c;
}

/**
 * Redis' luaPushErrorBuff: "-CODE msg" keeps its code, anything else gets "ERR"; the '-' and a
 * trailing newline are dropped.
 */
export function normalizeError(s: string): string {
  let code = 'ERR';
  let msg = s;
  if (s.startsWith('-')) {
    const space = s.indexOf(' ');
    if (space < 0) msg = s.slice(1);
    else {
      code = s.slice(1, space);
      msg = s.slice(space + 1);
    }
  }
  return `${code} ${msg.replace(/[\r\n]+$/, '')}`;
}

/** Pushes Redis' error table {err = message}; returns 1 (for a function returning it). */
export function pushErrorTable(L: LuaState, message: string): number {
  lua.lua_newtable(L);
  lua.lua_pushstring(L, Buffer.from(message, 'utf8'));
  lua.lua_setfield(L, -2, to_luastring('err'));
  return 1;
}

/** Raises a plain string error without a position (luaL_error from a C function). */
function raiseMessage(L: LuaState, message: string): never {
  lua.lua_pushstring(L, Buffer.from(message, 'utf8'));
  return lua.lua_error(L);
}

/** Raises Redis' error table {err = message}. */
export function raiseErrorTable(L: LuaState, message: string): never {
  pushErrorTable(L, message);
  return lua.lua_error(L);
}
