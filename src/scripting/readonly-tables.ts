/**
 * Read-only Lua tables, as Redis 7's Lua has them (deps/lua: a `readonly` flag on a table, checked
 * by the VM's table stores and by lua_rawset/lua_setmetatable): a script cannot replace
 * `string.rep`, `redis.call` or `cjson.encode` for the scripts after it, nor create globals.
 *
 * fengari has no such flag. Every store into a table goes through ltable.luaH_setfrom or
 * ltable.luaH_setint, called through the module object (lvm's settable, lua_rawset, lua_rawseti,
 * lua_rawsetp), so wrapping those two once per process gives every table the check; a table
 * carries the flag as a property. setmetatable is wrapped by the VM (lua-vm.ts), because
 * lua_setmetatable writes the metatable field directly.
 */
import { createRequire } from 'node:module';
import fengari, { type LuaState } from 'fengari';

const { lua, to_luastring } = fengari;

export const READONLY_MESSAGE = 'Attempt to modify a readonly table';

interface FengariTable {
  readonly?: boolean;
  metatable: FengariTable | null;
}
interface LtableModule {
  luaH_setfrom(L: LuaState, t: FengariTable, key: unknown, value: unknown): void;
  luaH_setint(t: FengariTable, key: number, value: unknown): void;
}
interface LdebugModule {
  luaG_runerror(L: LuaState, fmt: Uint8Array): never;
}

const require = createRequire(import.meta.url);
let installed = false;

/** Wraps fengari's table stores with the readonly check (idempotent). */
function install(): void {
  if (installed) return;
  installed = true;
  const ltable = require('fengari/src/ltable.js') as LtableModule;
  const ldebug = require('fengari/src/ldebug.js') as LdebugModule;
  const setfrom = ltable.luaH_setfrom;
  const setint = ltable.luaH_setint;
  const message = to_luastring(READONLY_MESSAGE);
  // luaG_runerror adds "source:line:" when the running function is Lua code, as Redis' luaG_runerror.
  ltable.luaH_setfrom = (L, t, key, value) => {
    if (t.readonly === true) ldebug.luaG_runerror(L, message);
    setfrom(L, t, key, value);
  };
  // No lua_State here: a JavaScript error, which the VM's native-error handler turns into a Lua error.
  ltable.luaH_setint = (t, key, value) => {
    if (t.readonly === true) throw new Error(READONLY_MESSAGE);
    setint(t, key, value);
  };
}

install();

function tableAt(L: LuaState, idx: number): FengariTable {
  return lua.lua_topointer(L, idx) as FengariTable;
}

export function isReadonly(L: LuaState, idx: number): boolean {
  return lua.lua_type(L, idx) === lua.LUA_TTABLE && tableAt(L, idx).readonly === true;
}

export function setReadonly(L: LuaState, idx: number, on: boolean): void {
  tableAt(L, idx).readonly = on;
}

/**
 * Redis' luaSetTableProtectionRecursively: the table at `idx`, every table reachable from it and
 * their metatables become read-only.
 */
export function protectRecursively(L: LuaState, idx: number): void {
  idx = lua.lua_absindex(L, idx);
  if (isReadonly(L, idx)) return;
  setReadonly(L, idx, true);
  lua.lua_pushnil(L);
  while (lua.lua_next(L, idx)) {
    if (lua.lua_type(L, -1) === lua.LUA_TTABLE) protectRecursively(L, -1);
    lua.lua_pop(L, 1);
  }
  if (lua.lua_getmetatable(L, idx)) {
    protectRecursively(L, -1);
    lua.lua_pop(L, 1);
  }
}
