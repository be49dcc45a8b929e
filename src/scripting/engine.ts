/**
 * The scripting engine of one server: the Lua VM, the script cache (EVAL/EVALSHA), the function
 * libraries (FUNCTION/FCALL) and the one script that may be running.
 *
 * Atomicity: a script runs on the event loop and its redis.call runs the command through the
 * command table's run() in the same turn, so nothing else is interleaved. Commands see a keyspace
 * view (script-keyspace.ts) whose reads decode synchronously and whose writes hand their acks to
 * the run: the script's writes are visible at once (the overlay), and its reply leaves after every
 * one of them has committed.
 *
 * Long scripts: a count hook checks the clock every HOOK_INSTRUCTIONS instructions. Past the busy
 * threshold (Redis' busy-reply-threshold, 5 s) the script yields to the event loop every
 * YIELD_SLICE_MS; in between, other clients get -BUSY (dispatch.ts asks busyError()) except for
 * allow_busy commands, SCRIPT KILL / FUNCTION KILL stop a script that has not written, and
 * SHUTDOWN NOSAVE remains.
 */
import { createHash } from 'node:crypto';
import fengari, { type LuaState } from 'fengari';
import { ErrorReply, OK, type Reply } from '../protocol/reply.js';
import { joinAcks, type Ack, type Keyspace } from '../storage/keyspace.js';
import type { CommandContext, CommandSpec, ServerContext } from '../commands/types.js';
import { pushReply, scriptError, toReply } from './convert.js';
import { LuaVm, pushErrorTable, raiseErrorTable, type LOG_LEVELS, type ScriptHost } from './lua-vm.js';
import { scriptKeyspace } from './script-keyspace.js';
import { FunctionRegistry } from './functions.js';
import { arm, disarm, heapUsed, SCRIPT_OOM, suspend } from './memory-guard.js';

const { lua, lauxlib } = fengari;

/** Instructions between two checks of the clock, the memory and the kill flag. */
const HOOK_INSTRUCTIONS = 1000;
/** Once busy, how long the script runs between two turns of the event loop. */
const YIELD_SLICE_MS = 20;
/** Scripts kept in the cache; the least recently used is dropped past either bound. */
const MAX_CACHED_SCRIPTS = 10_000;
const MAX_CACHED_BYTES = 64 * 1024 * 1024;

export const BUSY_EVAL = new ErrorReply('BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.');
export const BUSY_FUNCTION = new ErrorReply('BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.');
const NOTBUSY = new ErrorReply('NOTBUSY No scripts in execution right now.');
const UNKILLABLE = new ErrorReply(
  'UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.',
);
const KILLED = 'ERR Script killed by user with SCRIPT KILL...';


export interface EngineOptions {
  version: string;
  busyThresholdMs: number;
  /** Growth of the JS heap (V8 heap plus external buffers) a script may cause. */
  memoryLimitBytes: number;
  log?: (level: (typeof LOG_LEVELS)[number], message: string) => void;
}

export interface ScriptFlags {
  noWrites: boolean;
}

interface CachedScript {
  ref: number;
  bytes: number;
  flags: ScriptFlags;
}

/** What a run needs to know to call commands. */
export interface RunTarget {
  /** Registry reference of the compiled function. */
  ref: number;
  /** For error messages: the script's sha or the function's name. */
  name: string;
  kind: 'eval' | 'function';
  readOnly: boolean;
  keys: Buffer[];
  args: Buffer[];
  command: Buffer[];
}

class Run {
  readonly started = performance.now();
  lastYield = this.started;
  busy = false;
  killed = false;
  wrote = false;
  resp: 2 | 3 = 2;
  readonly acks: Ack[] = [];
  readonly ks: Keyspace;
  readonly heapBase = heapUsed();
  thread: LuaState | null = null;
  threadRef = 0;

  constructor(
    readonly target: RunTarget,
    readonly ctx: CommandContext,
    readonly table: { resolve(args: readonly Buffer[]): CommandSpec | ErrorReply; lookup(name: string): CommandSpec | undefined },
    readonly runCommand: (spec: CommandSpec, ctx: CommandContext, args: Buffer[]) => Reply | Promise<Reply>,
  ) {
    this.ks = scriptKeyspace(ctx.ks, (ack) => this.acks.push(ack));
  }
}

export function sha1hex(body: Buffer): string {
  return createHash('sha1').update(body).digest('hex');
}

/** `#!lua flags=…` of an EVAL script (Redis 7), or the error Redis gives. */
export function evalShebang(body: Buffer): { flags: ScriptFlags; body: Buffer } | ErrorReply {
  if (!(body.length >= 2 && body[0] === 0x23 && body[1] === 0x21)) return { flags: { noWrites: false }, body };
  const eol = body.indexOf(0x0a);
  const line = body.subarray(0, eol < 0 ? body.length : eol).toString('latin1');
  const parts = line.slice(2).split(' ').filter((p) => p !== '');
  if (parts[0] !== 'lua') return new ErrorReply(`ERR Could not find engine '${parts[0] ?? ''}'`);
  const flags: ScriptFlags = { noWrites: false };
  for (const part of parts.slice(1)) {
    if (!part.startsWith('flags=')) return new ErrorReply(`ERR Unknown lua shebang option: ${part}`);
    for (const f of part.slice(6).split(',').filter((x) => x !== '')) {
      if (f === 'no-writes') flags.noWrites = true;
      else if (!['allow-oom', 'allow-stale', 'no-cluster', 'allow-cross-slot-keys'].includes(f)) {
        return new ErrorReply(`ERR Unexpected flag in script shebang: ${f}`);
      }
    }
  }
  // The shebang line becomes an empty line, so line numbers in errors stay those of the source.
  const rest = Buffer.concat([Buffer.from('\n'), eol < 0 ? Buffer.alloc(0) : body.subarray(eol + 1)]);
  return { flags, body: rest };
}

export class ScriptEngine {
  readonly vm: LuaVm;
  private readonly scripts = new Map<string, CachedScript>();
  private cachedBytes = 0;
  private running: Run | null = null;
  /** FUNCTION libraries; set up by engineOf() once the engine exists. */
  functions!: FunctionRegistry;
  /** Set while FUNCTION LOAD runs a library's body: redis.register_function's target. */
  registrar: ((L: LuaState) => number) | null = null;

  constructor(private readonly opts: EngineOptions) {
    this.vm = new LuaVm(opts.version);
    const engine = this;
    const host: ScriptHost = {
      call: (L, raise) => engine.call(L, raise),
      setResp: (v) => {
        if (engine.running !== null) engine.running.resp = v;
      },
      log: (level, message) => engine.opts.log?.(level, message),
      registerFunction: (L) => {
        if (engine.registrar === null) return raiseErrorTable(L, 'ERR redis.register_function can only be called on FUNCTION LOAD command');
        return engine.registrar(L);
      },
    };
    this.vm.host = host;
  }

  // ---- the script cache ---------------------------------------------------------------------------

  /** Compiles and caches a script body (SCRIPT LOAD, EVAL); returns its sha or the compile error. */
  load(body: Buffer): { sha: string; script: CachedScript } | ErrorReply {
    const sha = sha1hex(body);
    const cached = this.scripts.get(sha);
    if (cached !== undefined) {
      // Most recently used last: the eviction order.
      this.scripts.delete(sha);
      this.scripts.set(sha, cached);
      return { sha, script: cached };
    }
    const parsed = evalShebang(body);
    if (parsed instanceof ErrorReply) return parsed;
    const compiled = this.vm.compile(parsed.body, 'user_script');
    if ('error' in compiled) return new ErrorReply(`ERR Error compiling script (new function): ${compiled.error}`);
    const script: CachedScript = { ref: compiled.ref, bytes: body.length, flags: parsed.flags };
    this.scripts.set(sha, script);
    this.cachedBytes += body.length;
    while (this.scripts.size > MAX_CACHED_SCRIPTS || this.cachedBytes > MAX_CACHED_BYTES) {
      const [oldSha, old] = this.scripts.entries().next().value as [string, CachedScript];
      if (oldSha === sha) break;
      this.dropScript(oldSha, old);
    }
    return { sha, script };
  }

  lookupSha(sha: string): CachedScript | undefined {
    return this.scripts.get(sha.toLowerCase());
  }

  exists(sha: string): boolean {
    return this.scripts.has(sha.toLowerCase());
  }

  flushScripts(): void {
    for (const [sha, s] of [...this.scripts]) this.dropScript(sha, s);
  }

  get cachedScripts(): number {
    return this.scripts.size;
  }

  private dropScript(sha: string, s: CachedScript): void {
    this.scripts.delete(sha);
    this.cachedBytes -= s.bytes;
    this.vm.release(s.ref);
  }

  // ---- busy state -------------------------------------------------------------------------------

  /** The -BUSY reply other clients get while a script runs past the threshold, else null. */
  busyError(): ErrorReply | null {
    const r = this.running;
    if (r === null || !r.busy) return null;
    return r.target.kind === 'eval' ? BUSY_EVAL : BUSY_FUNCTION;
  }

  /** SCRIPT KILL (eval) / FUNCTION KILL (function), with Redis' replies. */
  kill(kind: 'eval' | 'function'): Reply {
    const r = this.running;
    if (r === null || !r.busy) return NOTBUSY;
    if (r.wrote) return UNKILLABLE;
    if (r.target.kind !== kind) return r.target.kind === 'eval' ? BUSY_EVAL : BUSY_FUNCTION;
    r.killed = true;
    return OK;
  }

  /** What FUNCTION STATS shows of the running script. */
  runningScript(): { name: string; kind: 'eval' | 'function'; command: Buffer[]; durationMs: number } | null {
    const r = this.running;
    if (r === null) return null;
    return { name: r.target.name, kind: r.target.kind, command: r.target.command, durationMs: Math.floor(performance.now() - r.started) };
  }

  // ---- running ------------------------------------------------------------------------------------

  /**
   * Runs a compiled script or function. The reply is synchronous unless the script yields (it ran
   * past the busy threshold) or its writes wait for their commit.
   */
  execute(
    target: RunTarget,
    ctx: CommandContext,
    table: Run['table'],
    runCommand: Run['runCommand'],
  ): Reply | Promise<Reply> {
    if (this.running !== null) return BUSY_EVAL;
    const run = new Run(target, ctx, table, runCommand);
    const vm = this.vm;
    const L = vm.L;
    vm.setArray('KEYS', target.keys);
    vm.setArray('ARGV', target.args);
    const co = lua.lua_newthread(L);
    run.thread = co;
    run.threadRef = lauxlib.luaL_ref(L, lua.LUA_REGISTRYINDEX);
    lua.lua_rawgeti(co, lua.LUA_REGISTRYINDEX, vm.runRef);
    lua.lua_rawgeti(co, lua.LUA_REGISTRYINDEX, target.ref);
    let nargs = 1;
    if (target.kind === 'function') {
      for (const list of [target.keys, target.args]) {
        lua.lua_createtable(co, list.length, 0);
        list.forEach((b, i) => {
          lua.lua_pushstring(co, b);
          lua.lua_rawseti(co, -2, i + 1);
        });
      }
      nargs = 3;
    }
    lua.lua_sethook(co, (Lh) => this.hook(Lh, run), lua.LUA_MASKCOUNT, HOOK_INSTRUCTIONS);
    this.running = run;
    // The script's writes commit in one transaction per shard, like EXEC's (Keyspace.beginAtomic).
    const group = run.ctx.ks.beginAtomic();
    const finish = (reply: Reply): Reply | Promise<Reply> => {
      group.end();
      this.running = null;
      lauxlib.luaL_unref(L, lua.LUA_REGISTRYINDEX, run.threadRef);
      const ack = joinAcks(run.acks);
      return ack === undefined ? reply : ack.then(() => reply);
    };
    const step = (first: boolean): Reply | Promise<Reply> => {
      let status: number;
      // Every byte buffer the VM makes while the script runs is checked against its budget.
      arm(run.heapBase, this.opts.memoryLimitBytes, co);
      try {
        status = lua.lua_resume(co, null, first ? nargs : 0);
      } catch (err) {
        return finish(new ErrorReply(`ERR Error running script ${target.name}, ${err instanceof Error ? err.message : String(err)}`));
      } finally {
        disarm();
      }
      if (status === lua.LUA_YIELD) {
        lua.lua_settop(co, 0);
        return new Promise<Reply | Promise<Reply>>((resolve) => setImmediate(() => resolve(step(false)))).then((r) => r);
      }
      let reply: Reply;
      if (status !== lua.LUA_OK) {
        const s = lua.lua_tolstring(co, -1);
        reply = new ErrorReply(`ERR Error running script ${target.name}, ${s === null ? 'execution failure' : Buffer.from(s).toString('utf8')}`);
      } else if (lua.lua_toboolean(co, 1)) {
        reply = lua.lua_gettop(co) >= 2 ? toReply(co, 2, run.resp) : null;
      } else {
        reply = scriptError(co, 2, target.name);
      }
      lua.lua_settop(co, 0);
      return finish(reply);
    };
    return step(true);
  }

  private hook(L: LuaState, run: Run): void {
    if (heapUsed() - run.heapBase > this.opts.memoryLimitBytes) {
      lua.lua_sethook(L, null, 0, 0);
      raiseErrorTable(L, SCRIPT_OOM);
    }
    if (run.killed) {
      lua.lua_sethook(L, null, 0, 0);
      raiseErrorTable(L, KILLED);
    }
    const now = performance.now();
    if (now - run.started < this.opts.busyThresholdMs) return;
    if (!run.busy) {
      run.busy = true;
      this.opts.log?.('warning', `Slow script detected: still in execution after ${Math.round(now - run.started)} milliseconds. You can try killing the script using the SCRIPT KILL command. Script name is: ${run.target.name}.`);
    }
    // Only the script's own thread yields to us (a coroutine of the script's would yield to it).
    if (L === run.thread && now - run.lastYield >= YIELD_SLICE_MS && lua.lua_isyieldable(L)) {
      run.lastYield = now;
      lua.lua_yield(L, 0);
    }
  }

  /** redis.call / redis.pcall. */
  private call(L: LuaState, raise: boolean): number {
    const run = this.running;
    const fail = (message: string): number => {
      pushErrorTable(L, message);
      return raise ? lua.lua_error(L) : 1;
    };
    if (run === null) return fail('ERR redis.call is only available while a script runs');
    const n = lua.lua_gettop(L);
    if (n === 0) return fail('ERR Please specify at least one argument for this redis lib call');
    const args: Buffer[] = [];
    for (let i = 1; i <= n; i++) {
      const t = lua.lua_type(L, i);
      if (t === lua.LUA_TSTRING) args.push(Buffer.from(lua.lua_tolstring(L, i)!));
      else if (t === lua.LUA_TNUMBER) args.push(Buffer.from(numberArg(L, i), 'latin1'));
      else return fail('ERR Lua redis lib command arguments must be strings or integers');
    }
    const spec = run.table.resolve(args);
    if (spec instanceof ErrorReply) {
      const name = args[0].toString('latin1').toLowerCase();
      if (run.table.lookup(name) === undefined) return fail('ERR Unknown Redis command called from script');
      if (spec.message.startsWith('ERR wrong number of arguments')) return fail('ERR Wrong number of args calling Redis command from script');
      return fail(spec.message);
    }
    if (spec.flags.includes('noscript')) return fail('ERR This Redis command is not allowed from script');
    const write = spec.flags.includes('write');
    if (write && run.target.readOnly) return fail('ERR Write commands are not allowed from read-only scripts.');
    if (write) run.wrote = true;
    const ctx: CommandContext = { ks: run.ks, client: run.ctx.client, server: run.ctx.server, now: run.ctx.now };
    const rearm = suspend();
    let reply: Reply | Promise<Reply>;
    try {
      reply = run.runCommand(spec, ctx, args);
    } finally {
      rearm();
    }
    if (reply instanceof Promise) {
      // A value still being computed by an earlier command's write: it cannot be waited for here.
      void reply.catch(() => undefined);
      return fail('ERR a value this command needs is still being computed by an earlier write; retry the script');
    }
    pushReply(L, reply, run.resp);
    if (raise && reply instanceof ErrorReply) return lua.lua_error(L);
    return 1;
  }
}

/** A Lua number as Redis passes it to a command: integers whole, floats shortest-exact ("%.17g"-like). */
function numberArg(L: LuaState, i: number): string {
  if (lua.lua_isinteger(L, i)) return String(lua.lua_tointeger(L, i));
  return String(lua.lua_tonumber(L, i));
}

// ---- one engine per server --------------------------------------------------------------------

const engines = new WeakMap<ServerContext, ScriptEngine>();

/** The server's configuration value for a Redis parameter name, or undefined. */
function param(server: ServerContext, name: string): string | undefined {
  return server.configParameters().find(([k]) => k === name)?.[1];
}

export function engineOf(server: ServerContext, make?: (server: ServerContext) => ScriptEngine): ScriptEngine {
  let e = engines.get(server);
  if (e === undefined) {
    const threshold = Number(param(server, 'busy-reply-threshold') ?? param(server, 'lua-time-limit') ?? 5000);
    e =
      make?.(server) ??
      new ScriptEngine({
        version: server.version,
        busyThresholdMs: threshold > 0 ? threshold : 5000,
        memoryLimitBytes: DEFAULT_MEMORY_LIMIT,
        // redis.log and the slow-script warning go to the server's log at Redis' level.
        log: (level, message) => server.logAt?.(level, message),
      });
    e.functions = new FunctionRegistry(e, param(server, 'dir') ?? null, (message) => server.logAt?.('warning', `FUNCTION libraries not loaded: ${message}`));
    engines.set(server, e);
  }
  return e;
}

/** The -BUSY error for a command without allow_busy while a script runs long, else null. */
export function busyGate(server: ServerContext, spec: CommandSpec): ErrorReply | null {
  if (spec.flags.includes('allow_busy')) return null;
  return engines.get(server)?.busyError() ?? null;
}

export const DEFAULT_MEMORY_LIMIT = 256 * 1024 * 1024;

