/**
 * FUNCTION libraries (Redis 7): `#!lua name=<lib>` code whose body calls redis.register_function.
 * The libraries persist in the data directory (functions.json, written to a temp file and renamed
 * into place, mode 0600) and are loaded again when the server starts.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fengari, { type LuaState } from 'fengari';
import { ErrorReply, type Reply } from '../protocol/reply.js';
import { decodeFunctionsDump, DumpPayloadError, encodeFunctionsDump } from '../protocol/rdb.js';
import { raiseErrorTable } from './lua-vm.js';
import type { ScriptEngine } from './engine.js';

const { lua, lauxlib, to_luastring } = fengari;

export interface LuaFunction {
  readonly name: string;
  readonly ref: number;
  readonly description: string | null;
  readonly flags: readonly string[];
  readonly library: string;
}

export interface Library {
  readonly name: string;
  readonly code: Buffer;
  readonly functions: Map<string, LuaFunction>;
}

const FLAGS = ['no-writes', 'allow-oom', 'allow-stale', 'no-cluster', 'allow-cross-slot-keys'];
const NAME = /^[A-Za-z0-9_]+$/;
/** Decoded library code a FUNCTION RESTORE may hold (Redis' proto-max-bulk-len default). */
const MAX_RESTORE_BYTES = 512 * 1024 * 1024;
const FILE = 'functions.json';

export type RestorePolicy = 'APPEND' | 'REPLACE' | 'FLUSH';

export class FunctionRegistry {
  readonly libraries = new Map<string, Library>();
  readonly functions = new Map<string, LuaFunction>();

  constructor(
    private readonly engine: ScriptEngine,
    /** Where functions.json lives; null: not persisted (tests without a data directory). */
    private readonly dir: string | null,
    onLoadError: (message: string) => void = () => undefined,
  ) {
    if (dir === null || !existsSync(join(dir, FILE))) return;
    try {
      const saved = JSON.parse(readFileSync(join(dir, FILE), 'utf8')) as { libraries: { code: string }[] };
      for (const lib of saved.libraries) {
        const r = this.add(Buffer.from(lib.code, 'base64'), false);
        if (r instanceof ErrorReply) onLoadError(r.message);
      }
    } catch (err) {
      onLoadError(`cannot read ${FILE}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** FUNCTION LOAD [REPLACE]: the library's name, or Redis' error. */
  load(code: Buffer, replace: boolean): Reply {
    const r = this.add(code, replace);
    if (!(r instanceof ErrorReply)) this.persist();
    return r;
  }

  delete(name: string): Reply {
    const lib = this.libraries.get(name);
    if (lib === undefined) return new ErrorReply('ERR Library not found');
    this.remove(lib);
    this.persist();
    return null;
  }

  flush(): void {
    for (const lib of [...this.libraries.values()]) this.remove(lib);
    this.persist();
  }

  /** FUNCTION DUMP: Redis' payload (RDB function opcodes, version and CRC-64; src/protocol/rdb.ts). */
  dump(): Buffer {
    return encodeFunctionsDump([...this.libraries.values()].map((l) => l.code));
  }

  /**
   * FUNCTION RESTORE, all or nothing, in Redis' order (functionRestoreCommand): the payload's
   * libraries are created on their own first (compile and registration errors), then joined with
   * the current ones — FLUSH drops those, APPEND fails on a library name already present, REPLACE
   * drops the library it replaces; a function name held by a library that stays fails it.
   */
  restore(payload: Buffer, policy: RestorePolicy): Reply {
    let codes: Buffer[];
    try {
      codes = decodeFunctionsDump(payload, MAX_RESTORE_BYTES);
    } catch (err) {
      if (err instanceof DumpPayloadError) return new ErrorReply(`ERR ${err.message}`);
      throw err;
    }
    const previous = [...this.libraries.values()];
    for (const lib of previous) this.remove(lib);
    const fail = (reply: ErrorReply): ErrorReply => {
      for (const lib of [...this.libraries.values()]) this.remove(lib);
      for (const lib of previous) this.add(lib.code, true);
      return reply;
    };
    for (const code of codes) {
      const r = this.add(code, false);
      if (r instanceof ErrorReply) return fail(r);
    }
    if (policy !== 'FLUSH') {
      const kept: Library[] = [];
      for (const old of previous) {
        if (!this.libraries.has(old.name)) kept.push(old);
        else if (policy === 'APPEND') return fail(new ErrorReply(`ERR Library ${old.name} already exists`));
      }
      for (const old of kept) {
        for (const name of old.functions.keys()) {
          if (this.functions.has(name)) return fail(new ErrorReply(`ERR Function ${name} already exists`));
        }
      }
      for (const old of kept) this.add(old.code, false);
    }
    this.persist();
    return null;
  }

  private remove(lib: Library): void {
    for (const f of lib.functions.values()) {
      this.functions.delete(f.name);
      this.engine.vm.release(f.ref);
    }
    this.libraries.delete(lib.name);
  }

  private add(code: Buffer, replace: boolean): Reply {
    const meta = libraryMeta(code);
    if (meta instanceof ErrorReply) return meta;
    const old = this.libraries.get(meta.name);
    if (old !== undefined && !replace) return new ErrorReply(`ERR Library '${meta.name}' already exists`);
    const compiled = this.engine.vm.compile(meta.body, 'user_function', true);
    if ('error' in compiled) return new ErrorReply(`ERR Error compiling function: ${compiled.error}`);
    const lib: Library = { name: meta.name, code, functions: new Map() };
    const L = this.engine.vm.L;
    this.engine.registrar = (Lr) => registerFunction(Lr, lib);
    let status: number;
    this.engine.vm.libraryLoading(true);
    try {
      lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, compiled.ref);
      status = lua.lua_pcall(L, 0, 0, 0);
    } finally {
      this.engine.vm.libraryLoading(false);
      this.engine.registrar = null;
      this.engine.vm.release(compiled.ref);
    }
    const release = (): void => lib.functions.forEach((f) => this.engine.vm.release(f.ref));
    if (status !== lua.LUA_OK) {
      const msg = errorText(L);
      release();
      return new ErrorReply(`ERR Error registering functions: ${msg}`);
    }
    if (lib.functions.size === 0) return new ErrorReply('ERR No functions registered');
    for (const f of lib.functions.values()) {
      const other = this.functions.get(f.name);
      if (other !== undefined && other.library !== lib.name) {
        release();
        return new ErrorReply(`ERR Function ${f.name} already exists`);
      }
    }
    if (old !== undefined) this.remove(old);
    this.libraries.set(lib.name, lib);
    for (const f of lib.functions.values()) this.functions.set(f.name, f);
    return lib.name;
  }

  private serialize(): string {
    return JSON.stringify({ libraries: [...this.libraries.values()].map((l) => ({ name: l.name, code: l.code.toString('base64') })) });
  }

  private persist(): void {
    if (this.dir === null) return;
    const tmp = join(this.dir, `${FILE}.tmp-${process.pid}`);
    writeFileSync(tmp, this.serialize(), { mode: 0o600, flush: true });
    renameSync(tmp, join(this.dir, FILE));
  }
}

function errorText(L: LuaState): string {
  let msg: string;
  if (lua.lua_type(L, -1) === lua.LUA_TTABLE) {
    lua.lua_getfield(L, -1, to_luastring('err'));
    const s = lua.lua_tolstring(L, -1);
    msg = s === null ? 'unknown error' : Buffer.from(s).toString('utf8');
    lua.lua_pop(L, 1);
  } else {
    // Redis' luaExtractErrorInformation: a plain string error gets the ERR code.
    const s = lua.lua_tolstring(L, -1);
    msg = s === null ? 'unknown error' : `ERR ${Buffer.from(s).toString('utf8')}`;
  }
  lua.lua_pop(L, 1);
  return msg;
}

/** The shebang of a library: `#!lua name=<lib>`; the body keeps its line numbers. */
function libraryMeta(code: Buffer): { name: string; body: Buffer } | ErrorReply {
  if (!(code.length >= 2 && code[0] === 0x23 && code[1] === 0x21)) return new ErrorReply('ERR Missing library metadata');
  const eol = code.indexOf(0x0a);
  const line = code.subarray(2, eol < 0 ? code.length : eol).toString('latin1').replace(/\r$/, '');
  const parts = line.split(' ').filter((p) => p !== '');
  let name: string | null = null;
  for (const part of parts.slice(1)) {
    if (!part.startsWith('name=')) return new ErrorReply(`ERR Invalid metadata value given: ${part}`);
    name = part.slice(5);
  }
  if (name === null) return new ErrorReply('ERR Library name was not given');
  if (parts[0]?.toLowerCase() !== 'lua') return new ErrorReply(`ERR Engine '${parts[0] ?? ''}' not found`);
  if (!NAME.test(name)) return new ErrorReply('ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long');
  return { name, body: Buffer.concat([Buffer.from('\n'), eol < 0 ? Buffer.alloc(0) : code.subarray(eol + 1)]) };
}

/** redis.register_function(name, callback) or redis.register_function{function_name=…, callback=…, flags=…, description=…}. */
function registerFunction(L: LuaState, lib: Library): number {
  let name: string | null = null;
  let description: string | null = null;
  const flags: string[] = [];
  const str = (idx: number): string | null => (lua.lua_type(L, idx) === lua.LUA_TSTRING ? Buffer.from(lua.lua_tolstring(L, idx)!).toString('utf8') : null);
  if (lua.lua_gettop(L) === 1 && lua.lua_type(L, 1) === lua.LUA_TTABLE) {
    lua.lua_getfield(L, 1, to_luastring('function_name'));
    name = str(-1);
    lua.lua_pop(L, 1);
    lua.lua_getfield(L, 1, to_luastring('description'));
    description = str(-1);
    lua.lua_pop(L, 1);
    lua.lua_getfield(L, 1, to_luastring('flags'));
    if (lua.lua_type(L, -1) === lua.LUA_TTABLE) {
      for (let i = 1; lua.lua_rawgeti(L, -1, i) !== lua.LUA_TNIL; i++) {
        const f = str(-1);
        lua.lua_pop(L, 1);
        if (f === null || !FLAGS.includes(f)) return raiseErrorTable(L, 'ERR unknown flag given');
        flags.push(f);
      }
      lua.lua_pop(L, 1);
    }
    lua.lua_pop(L, 1);
    lua.lua_getfield(L, 1, to_luastring('callback'));
    if (name === null) return raiseErrorTable(L, 'ERR function_name argument given to redis.register_function must be a string');
  } else {
    if (lua.lua_gettop(L) !== 2) return raiseErrorTable(L, 'ERR wrong number of arguments to redis.register_function');
    name = str(1);
    if (name === null) return raiseErrorTable(L, 'ERR first argument to redis.register_function must be a string');
    lua.lua_pushvalue(L, 2);
  }
  if (lua.lua_type(L, -1) !== lua.LUA_TFUNCTION) return raiseErrorTable(L, 'ERR callback argument given to redis.register_function must be a function');
  if (!NAME.test(name)) {
    return raiseErrorTable(L, 'ERR Function names can only contain letters, numbers, or underscores(_) and must be at least one character long');
  }
  if (lib.functions.has(name)) return raiseErrorTable(L, 'ERR Function already exists in the library');
  const ref = lauxlib.luaL_ref(L, lua.LUA_REGISTRYINDEX);
  lib.functions.set(name, { name, ref, description, flags, library: lib.name });
  return 0;
}
