// Compares the two Lua VMs on the registry for EVAL: fengari (Lua 5.3 in JavaScript) and wasmoon
// (Lua 5.4 in WebAssembly). Each gets the same `redis.call` stand-in — arguments converted to Buffers
// as the server must do, a status reply converted back — so the figures are the VM's own cost:
//   A: a script doing 10 redis.call per EVAL, called 20,000 times (µs per EVAL)
//   B: one script doing 10,000 redis.call (ms per script)
// Run: node bench/lua-vm.mjs
import fengari from 'fengari';
import { LuaFactory } from 'wasmoon';

const { lua, lauxlib, lualib, to_luastring } = fengari;
const SCRIPT_A = "for i = 1, 10 do redis.call('SET', KEYS[1], ARGV[1]) end return 1";
const SCRIPT_B = "local n = 0 for i = 1, 10000 do if redis.call('SET', KEYS[1], i) then n = n + 1 end end return n";
const CALLS_A = 20_000;
const RUNS_B = 20;
let calls = 0;

function fakeCall(args) {
  calls += args.length > 0 ? 1 : 0;
  return 'OK';
}

function timeIt(label, fn, n) {
  fn(); // warm up
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn();
  const ms = performance.now() - t0;
  return { label, perCallUs: (ms * 1000) / n };
}

function benchFengari() {
  const L = lauxlib.luaL_newstate();
  lualib.luaL_openlibs(L);
  lua.lua_newtable(L);
  lua.lua_pushcfunction(L, (L) => {
    const n = lua.lua_gettop(L);
    const args = [];
    for (let i = 1; i <= n; i++) args.push(Buffer.from(lua.lua_tolstring(L, i)));
    fakeCall(args);
    lua.lua_newtable(L);
    lua.lua_pushliteral(L, 'ok');
    lua.lua_pushliteral(L, 'OK');
    lua.lua_rawset(L, -3);
    return 1;
  });
  lua.lua_setfield(L, -2, to_luastring('call'));
  lua.lua_setglobal(L, to_luastring('redis'));
  const compile = (src) => {
    if (lauxlib.luaL_loadbuffer(L, to_luastring(src), null, to_luastring('@user_script')) !== 0) throw new Error('compile');
    return lauxlib.luaL_ref(L, lua.LUA_REGISTRYINDEX);
  };
  const run = (ref, key, arg) => {
    lua.lua_newtable(L);
    lua.lua_pushstring(L, key);
    lua.lua_rawseti(L, -2, 1);
    lua.lua_setglobal(L, to_luastring('KEYS'));
    lua.lua_newtable(L);
    lua.lua_pushstring(L, arg);
    lua.lua_rawseti(L, -2, 1);
    lua.lua_setglobal(L, to_luastring('ARGV'));
    lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, ref);
    if (lua.lua_pcall(L, 0, 1, 0) !== 0) throw new Error(lua.lua_tojsstring(L, -1));
    const r = lua.lua_tointeger(L, -1);
    lua.lua_pop(L, 1);
    return r;
  };
  const a = compile(SCRIPT_A);
  const b = compile(SCRIPT_B);
  const key = to_luastring('k');
  const val = to_luastring('v');
  return [timeIt('fengari A (10 calls/EVAL)', () => run(a, key, val), CALLS_A), timeIt('fengari B (10,000 calls)', () => run(b, key, val), RUNS_B)];
}

async function benchWasmoon() {
  const engine = await new LuaFactory().createEngine();
  engine.global.set('redis', {
    call: (...args) => {
      fakeCall(args.map((a) => Buffer.from(String(a))));
      return { ok: 'OK' };
    },
  });
  const run = (src) => () => {
    engine.global.set('KEYS', ['k']);
    engine.global.set('ARGV', ['v']);
    return engine.doStringSync(src);
  };
  const out = [timeIt('wasmoon A (10 calls/EVAL)', run(SCRIPT_A), CALLS_A), timeIt('wasmoon B (10,000 calls)', run(SCRIPT_B), RUNS_B)];
  engine.global.close();
  return out;
}

const results = [...benchFengari(), ...(await benchWasmoon())];
for (const r of results) {
  const per = r.label.includes(' B ') ? `${(r.perCallUs / 1000).toFixed(2)} ms per script` : `${r.perCallUs.toFixed(1)} µs per EVAL`;
  console.log(`${r.label.padEnd(32)} ${per}`);
}
console.log(`(${calls} redis.call made)`);
