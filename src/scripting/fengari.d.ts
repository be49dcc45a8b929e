/**
 * The part of fengari's API (Lua 5.3's C API, transliterated to JavaScript) that the scripting
 * engine uses. Lua strings are byte arrays (Uint8Array), so values stay binary-safe.
 */
declare module 'fengari' {
  export interface LuaState {
    readonly __luaState: unique symbol;
  }
  export type LuaString = Uint8Array;
  export type JsFunction = (L: LuaState) => number;
  export interface LuaDebug {
    currentline: number;
    source: LuaString | null;
  }
  export type Hook = (L: LuaState, ar: LuaDebug) => void;

  export const lua: {
    LUA_OK: 0;
    LUA_YIELD: 1;
    LUA_ERRRUN: 2;
    LUA_ERRSYNTAX: 3;
    LUA_ERRMEM: 4;
    LUA_ERRGCMM: 5;
    LUA_ERRERR: 6;
    LUA_TNONE: -1;
    LUA_TNIL: 0;
    LUA_TBOOLEAN: 1;
    LUA_TLIGHTUSERDATA: 2;
    LUA_TNUMBER: 3;
    LUA_TSTRING: 4;
    LUA_TTABLE: 5;
    LUA_TFUNCTION: 6;
    LUA_TUSERDATA: 7;
    LUA_TTHREAD: 8;
    LUA_MASKCOUNT: number;
    LUA_REGISTRYINDEX: number;
    LUA_RIDX_GLOBALS: number;
    LUA_MULTRET: number;
    lua_absindex(L: LuaState, idx: number): number;
    lua_gettop(L: LuaState): number;
    lua_settop(L: LuaState, idx: number): void;
    lua_pop(L: LuaState, n: number): void;
    lua_pushvalue(L: LuaState, idx: number): void;
    lua_remove(L: LuaState, idx: number): void;
    lua_insert(L: LuaState, idx: number): void;
    lua_type(L: LuaState, idx: number): number;
    lua_isinteger(L: LuaState, idx: number): boolean;
    lua_isstring(L: LuaState, idx: number): boolean;
    lua_tonumber(L: LuaState, idx: number): number;
    lua_tointeger(L: LuaState, idx: number): number;
    lua_toboolean(L: LuaState, idx: number): boolean;
    lua_tolstring(L: LuaState, idx: number): LuaString | null;
    lua_touserdata(L: LuaState, idx: number): unknown;
    lua_rawlen(L: LuaState, idx: number): number;
    lua_pushnil(L: LuaState): void;
    lua_pushnumber(L: LuaState, n: number): void;
    lua_pushinteger(L: LuaState, n: number): void;
    lua_pushstring(L: LuaState, s: LuaString): void;
    lua_pushliteral(L: LuaState, s: string): void;
    lua_pushboolean(L: LuaState, b: boolean): void;
    lua_pushcfunction(L: LuaState, f: JsFunction): void;
    lua_pushlightuserdata(L: LuaState, p: unknown): void;
    lua_createtable(L: LuaState, narr: number, nrec: number): void;
    lua_newtable(L: LuaState): void;
    lua_newthread(L: LuaState): LuaState;
    lua_getglobal(L: LuaState, name: LuaString): number;
    lua_setglobal(L: LuaState, name: LuaString): void;
    lua_getfield(L: LuaState, idx: number, k: LuaString): number;
    lua_setfield(L: LuaState, idx: number, k: LuaString): void;
    lua_rawget(L: LuaState, idx: number): number;
    lua_rawset(L: LuaState, idx: number): void;
    lua_rawgeti(L: LuaState, idx: number, n: number): number;
    lua_rawseti(L: LuaState, idx: number, n: number): void;
    lua_setmetatable(L: LuaState, idx: number): void;
    lua_getmetatable(L: LuaState, idx: number): boolean;
    lua_topointer(L: LuaState, idx: number): unknown;
    lua_tocfunction(L: LuaState, idx: number): JsFunction | null;
    lua_tothread(L: LuaState, idx: number): LuaState | null;
    lua_next(L: LuaState, idx: number): boolean;
    lua_setupvalue(L: LuaState, funcindex: number, n: number): LuaString | null;
    lua_pcall(L: LuaState, nargs: number, nresults: number, msgh: number): number;
    lua_call(L: LuaState, nargs: number, nresults: number): void;
    lua_resume(L: LuaState, from: LuaState | null, nargs: number): number;
    lua_yield(L: LuaState, n: number): number;
    lua_isyieldable(L: LuaState): boolean;
    lua_error(L: LuaState): never;
    lua_sethook(L: LuaState, f: Hook | null, mask: number, count: number): void;
    lua_getinfo(L: LuaState, what: LuaString, ar: LuaDebug): boolean;
    lua_getstack(L: LuaState, level: number, ar: LuaDebug): boolean;
    lua_atnativeerror(L: LuaState, f: JsFunction): void;
    lua_gc(L: LuaState, what: number, data: number): number;
    lua_xmove(from: LuaState, to: LuaState, n: number): void;
  };
  export const lauxlib: {
    luaL_newstate(): LuaState;
    luaL_loadbuffer(L: LuaState, buff: LuaString, sz: number | null, name: LuaString): number;
    luaL_ref(L: LuaState, t: number): number;
    luaL_unref(L: LuaState, t: number, ref: number): void;
    luaL_requiref(L: LuaState, modname: LuaString, openf: JsFunction, glb: number): void;
    luaL_checkinteger(L: LuaState, arg: number): number;
    luaL_checknumber(L: LuaState, arg: number): number;
    luaL_checklstring(L: LuaState, arg: number): LuaString;
    luaL_checkstring(L: LuaState, arg: number): LuaString;
    luaL_optinteger(L: LuaState, arg: number, def: number): number;
    luaL_checktype(L: LuaState, arg: number, t: number): void;
    luaL_error(L: LuaState, fmt: string, ...args: unknown[]): never;
    luaL_where(L: LuaState, level: number): void;
    luaL_argerror(L: LuaState, arg: number, extramsg: string): never;
    luaL_tolstring(L: LuaState, idx: number): LuaString;
    luaL_traceback(L: LuaState, L1: LuaState, msg: LuaString | null, level: number): void;
    luaL_len(L: LuaState, idx: number): number;
  };
  export const lualib: {
    luaopen_base: JsFunction;
    luaopen_table: JsFunction;
    luaopen_string: JsFunction;
    luaopen_math: JsFunction;
    luaopen_debug: JsFunction;
    luaopen_coroutine: JsFunction;
    luaopen_utf8: JsFunction;
  };
  export function to_luastring(s: string): LuaString;
  export function to_jsstring(s: LuaString): string;
}
