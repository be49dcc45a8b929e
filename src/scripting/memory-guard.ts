/**
 * Bounds what one allocation can add while a script runs. The engine's count hook compares the JS
 * heap with the script's budget every HOOK_INSTRUCTIONS instructions, but one instruction can make
 * a huge string (string.rep('x', 2^31), a `..` of large strings, table.concat, string.format,
 * gsub, string.pack/struct.pack): between two checks RSS could grow without bound, or V8 could
 * die of it. So every byte buffer the VM asks for is checked before it exists:
 *
 * - fengari makes each string's bytes with `new Uint8Array(n)` (luaV_concat, luaL_Buffer growth,
 *   to_luastring). Those modules bind their helpers at load time, so there is no function to wrap;
 *   the global constructor is what they all reach. While a script's coroutine runs (and only then:
 *   `armed` … `disarm`), `globalThis.Uint8Array` is a Proxy whose construct trap checks a requested
 *   length of LARGE_ALLOCATION or more against the budget. Everything else (instanceof, from, of,
 *   BYTES_PER_ELEMENT) is the real constructor's.
 * - cjson.encode and cmsgpack.pack (ours, lua-libs.ts) grow their own Buffers and ask `reserve()`.
 *
 * A refused allocation raises the script's out-of-memory error as a Lua error. Allocations under LARGE_ALLOCATION are left to the hook: at
 * most a few hundred of them fit between two checks, so the overshoot stays bounded.
 */
import { createRequire } from 'node:module';
import { getHeapStatistics } from 'node:v8';
import fengari, { type LuaState } from 'fengari';

const ldebug = createRequire(import.meta.url)('fengari/src/ldebug.js') as { luaG_runerror(L: LuaState, fmt: Uint8Array): never };

/** Allocations from this size on are checked against the budget at once. */
export const LARGE_ALLOCATION = 64 * 1024;

/** The error a script gets when it goes past its memory budget. */
export const SCRIPT_OOM = 'ERR Script used more memory than the scripting memory limit (not enough memory)';

/** JS heap in use plus external buffers (the script's strings live in ArrayBuffers). */
export function heapUsed(): number {
  const h = getHeapStatistics() as ReturnType<typeof getHeapStatistics> & { external_memory?: number };
  return h.used_heap_size + (h.external_memory ?? 0);
}

const RealUint8Array = globalThis.Uint8Array;

let budget: { base: number; limit: number; thread: LuaState } | null = null;
const OOM_TEXT = fengari.to_luastring(SCRIPT_OOM.slice(4));

/**
 * Refuses `bytes` more when they would take the running script past its budget, with a Lua
 * runtime error on the running thread (luaG_runerror: the message gets the script's position
 * when the allocation is the VM's own, such as `..`). A JavaScript exception would not do: fengari
 * turns one thrown inside a Lua frame into an "execution failure" that no pcall sees.
 */
export function reserve(bytes: number): void {
  if (budget === null || bytes < LARGE_ALLOCATION) return;
  if (bytes > budget.limit || heapUsed() - budget.base + bytes > budget.limit) ldebug.luaG_runerror(budget.thread, OOM_TEXT);
}

/**
 * The thread running now: the script's own, or a coroutine of the script's while
 * coroutine.resume runs it (lua-vm.ts wraps resume). Returns the previous one.
 */
export function switchThread(thread: LuaState): LuaState | null {
  if (budget === null) return null;
  const previous = budget.thread;
  budget.thread = thread;
  return previous;
}

const GuardedUint8Array: Uint8ArrayConstructor = new Proxy(RealUint8Array, {
  construct(target, args: unknown[], newTarget: (new (...a: unknown[]) => object)): object {
    if (typeof args[0] === 'number') reserve(args[0]);
    return Reflect.construct(target, args, newTarget) as object;
  },
});

/**
 * Checks allocations against `limit` bytes of growth over `base` (heapUsed() when the script
 * started) until disarm(). Called around each resume of a script's coroutine: nothing else runs
 * in between, and the event loop never sees the Proxy.
 */
export function arm(base: number, limit: number, thread: LuaState): void {
  budget = { base, limit, thread };
  globalThis.Uint8Array = GuardedUint8Array;
}

/**
 * Lifts the checks while a command runs for redis.call (its handlers and the store are not the
 * script's allocations); the returned function puts them back.
 */
export function suspend(): () => void {
  const saved = budget;
  disarm();
  return () => {
    if (saved !== null) arm(saved.base, saved.limit, saved.thread);
  };
}

export function disarm(): void {
  budget = null;
  globalThis.Uint8Array = RealUint8Array;
}
