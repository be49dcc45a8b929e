/**
 * The libraries Redis scripts expect besides Lua's own: `bit` (LuaBitOp), `cjson` and `cmsgpack`,
 * written against fengari's API because no Lua-side package for them runs on fengari. Each follows
 * the semantics of the C library Redis bundles (deps/lua/src/lua_bit.c, lua_cjson.c,
 * lua_cmsgpack.c) where a script can observe it. `struct` is a Lua shim over string.pack in
 * lua-vm.ts's prelude.
 */
import fengari, { type LuaState, type JsFunction } from 'fengari';
import { reserve } from './memory-guard.js';

const { lua, lauxlib, to_luastring } = fengari;

function register(L: LuaState, name: string, fns: Record<string, JsFunction>): void {
  lua.lua_newtable(L);
  for (const [k, f] of Object.entries(fns)) {
    lua.lua_pushcfunction(L, f);
    lua.lua_setfield(L, -2, to_luastring(k));
  }
  lua.lua_setglobal(L, to_luastring(name));
}

// ---- bit ----------------------------------------------------------------------------------------

/** LuaBitOp's argument normalisation: any number modulo 2^32, as a signed 32-bit integer. */
function bitArg(L: LuaState, i: number): number {
  const n = lauxlib.luaL_checknumber(L, i);
  return Number(BigInt.asIntN(32, BigInt(Math.trunc(n))));
}

function bitFold(op: (a: number, b: number) => number): JsFunction {
  return (L) => {
    let acc = bitArg(L, 1);
    for (let i = lua.lua_gettop(L); i > 1; i--) acc = op(acc, bitArg(L, i));
    lua.lua_pushinteger(L, acc | 0);
    return 1;
  };
}

function bitShift(op: (a: number, n: number) => number): JsFunction {
  return (L) => {
    lua.lua_pushinteger(L, op(bitArg(L, 1), bitArg(L, 2) & 31) | 0);
    return 1;
  };
}

export function openBit(L: LuaState): void {
  register(L, 'bit', {
    tobit: (L) => (lua.lua_pushinteger(L, bitArg(L, 1)), 1),
    bnot: (L) => (lua.lua_pushinteger(L, ~bitArg(L, 1)), 1),
    band: bitFold((a, b) => a & b),
    bor: bitFold((a, b) => a | b),
    bxor: bitFold((a, b) => a ^ b),
    lshift: bitShift((a, n) => a << n),
    rshift: bitShift((a, n) => a >>> n),
    arshift: bitShift((a, n) => a >> n),
    rol: bitShift((a, n) => (a << n) | (a >>> (32 - n))),
    ror: bitShift((a, n) => (a >>> n) | (a << (32 - n))),
    bswap: (L) => {
      const a = bitArg(L, 1);
      lua.lua_pushinteger(L, ((a >>> 24) | ((a >> 8) & 0xff00) | ((a & 0xff00) << 8) | (a << 24)) | 0);
      return 1;
    },
    tohex: (L) => {
      const a = bitArg(L, 1);
      let n = lua.lua_type(L, 2) <= 0 ? 8 : bitArg(L, 2);
      const upper = n < 0;
      if (upper) n = -n;
      if (n > 8) n = 8;
      let s = (a >>> 0).toString(16).padStart(8, '0').slice(8 - n);
      if (upper) s = s.toUpperCase();
      lua.lua_pushstring(L, to_luastring(s));
      return 1;
    },
  });
}

/** A growing output buffer for cjson.encode and cmsgpack.pack. */
class Writer {
  private buf = Buffer.allocUnsafe(256);
  len = 0;
  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const size = Math.max(this.buf.length * 2, this.len + n);
    // Checked against the script's memory budget before it exists (memory-guard.ts).
    reserve(size);
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
  byte(b: number): void {
    this.room(1);
    this.buf[this.len++] = b;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  num(kind: 'u16' | 'u32' | 'i8' | 'i16' | 'i32' | 'f32' | 'f64' | 'u64' | 'i64', v: number): void {
    const sizes = { i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, f64: 8, u64: 8, i64: 8 } as const;
    this.room(sizes[kind]);
    const b = this.buf;
    const o = this.len;
    if (kind === 'i8') b.writeInt8(v, o);
    else if (kind === 'u16') b.writeUInt16BE(v, o);
    else if (kind === 'i16') b.writeInt16BE(v, o);
    else if (kind === 'u32') b.writeUInt32BE(v, o);
    else if (kind === 'i32') b.writeInt32BE(v, o);
    else if (kind === 'f32') b.writeFloatBE(v, o);
    else if (kind === 'f64') b.writeDoubleBE(v, o);
    else if (kind === 'u64') b.writeBigUInt64BE(BigInt(v), o);
    else b.writeBigInt64BE(BigInt(v), o);
    this.len += sizes[kind];
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

// ---- cjson --------------------------------------------------------------------------------------

/** cjson.null: a light userdata, as lua-cjson's (a NULL pointer). */
const JSON_NULL = { cjsonNull: true };
const MAX_DEPTH = 1000;

/** lua-cjson's number format ("%.14g"), with integers kept whole. */
function formatNumber(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e15) return String(n);
  if (!Number.isFinite(n)) throw new Error(Number.isNaN(n) ? 'nan' : 'inf');
  return formatG(n, 14);
}

/** C's printf("%.<p>g"). */
export function formatG(n: number, precision: number): string {
  if (n === 0) return Object.is(n, -0) ? '-0' : '0';
  if (!Number.isFinite(n)) return Number.isNaN(n) ? 'nan' : n > 0 ? 'inf' : '-inf';
  const exp = Math.floor(Math.log10(Math.abs(Number(n.toPrecision(precision)))));
  if (exp < -4 || exp >= precision) {
    const [m, e] = n.toExponential(precision - 1).split('e');
    const mant = m.includes('.') ? m.replace(/0+$/, '').replace(/\.$/, '') : m;
    const ev = Number(e);
    return `${mant}e${ev < 0 ? '-' : '+'}${String(Math.abs(ev)).padStart(2, '0')}`;
  }
  const s = n.toFixed(Math.max(0, precision - 1 - exp));
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

const ESCAPES: Record<number, string> = { 0x22: '\\"', 0x5c: '\\\\', 0x2f: '\\/', 0x08: '\\b', 0x0c: '\\f', 0x0a: '\\n', 0x0d: '\\r', 0x09: '\\t' };

function encodeString(s: Uint8Array, out: Writer): void {
  out.byte(0x22);
  // Runs of bytes that need no escape are copied at once.
  let run = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    const esc = ESCAPES[c];
    if (esc === undefined && c >= 0x20 && c !== 0x7f) continue;
    if (i > run) out.bytes(s.subarray(run, i));
    run = i + 1;
    pushAscii(out, esc ?? `\\u${c.toString(16).padStart(4, '0')}`);
  }
  if (s.length > run) out.bytes(s.subarray(run));
  out.byte(0x22);
}

function pushAscii(out: Writer, s: string): void {
  for (let i = 0; i < s.length; i++) out.byte(s.charCodeAt(i));
}

/** lua-cjson's array test: keys 1..n (not excessively sparse); -1 when the table is an object. */
function arrayLength(L: LuaState, idx: number): number {
  let max = 0;
  let count = 0;
  lua.lua_pushnil(L);
  while (lua.lua_next(L, idx)) {
    lua.lua_pop(L, 1);
    if (lua.lua_type(L, -1) !== lua.LUA_TNUMBER || !lua.lua_isinteger(L, -1) || lua.lua_tointeger(L, -1) < 1) {
      lua.lua_pop(L, 1);
      return -1;
    }
    max = Math.max(max, lua.lua_tointeger(L, -1));
    count++;
  }
  // lua-cjson's default sparse ratio 2, safe 10.
  if (max > 10 && max > count * 2) throw new Error('Cannot serialise table: excessively sparse array');
  return max;
}

function encodeValue(L: LuaState, idx: number, depth: number, out: Writer): void {
  idx = lua.lua_absindex(L, idx);
  switch (lua.lua_type(L, idx)) {
    case lua.LUA_TSTRING:
      encodeString(lua.lua_tolstring(L, idx)!, out);
      return;
    case lua.LUA_TNUMBER:
      pushAscii(out, lua.lua_isinteger(L, idx) ? String(lua.lua_tointeger(L, idx)) : formatNumber(lua.lua_tonumber(L, idx)));
      return;
    case lua.LUA_TBOOLEAN:
      pushAscii(out, lua.lua_toboolean(L, idx) ? 'true' : 'false');
      return;
    case lua.LUA_TNIL:
      pushAscii(out, 'null');
      return;
    case lua.LUA_TLIGHTUSERDATA:
      if (lua.lua_touserdata(L, idx) === JSON_NULL) {
        pushAscii(out, 'null');
        return;
      }
      break;
    case lua.LUA_TTABLE: {
      if (depth > MAX_DEPTH) throw new Error(`Cannot serialise, excessive nesting (${depth})`);
      const n = arrayLength(L, idx);
      if (n > 0) {
        out.byte(0x5b);
        for (let i = 1; i <= n; i++) {
          if (i > 1) out.byte(0x2c);
          lua.lua_rawgeti(L, idx, i);
          encodeValue(L, -1, depth + 1, out);
          lua.lua_pop(L, 1);
        }
        out.byte(0x5d);
        return;
      }
      out.byte(0x7b);
      let first = true;
      lua.lua_pushnil(L);
      while (lua.lua_next(L, idx)) {
        if (!first) out.byte(0x2c);
        first = false;
        const kt = lua.lua_type(L, -2);
        if (kt === lua.LUA_TSTRING) encodeString(lua.lua_tolstring(L, -2)!, out);
        else if (kt === lua.LUA_TNUMBER) {
          out.byte(0x22);
          pushAscii(out, lua.lua_isinteger(L, -2) ? String(lua.lua_tointeger(L, -2)) : formatNumber(lua.lua_tonumber(L, -2)));
          out.byte(0x22);
        } else throw new Error('Cannot serialise table: table key must be a number or string');
        out.byte(0x3a);
        encodeValue(L, -1, depth + 1, out);
        lua.lua_pop(L, 1);
      }
      out.byte(0x7d);
      return;
    }
  }
  const typeName = ['nil', 'boolean', 'userdata', 'number', 'string', 'table', 'function', 'userdata', 'thread'][lua.lua_type(L, idx)] ?? 'value';
  throw new Error(`Cannot serialise ${typeName}: type not supported`);
}

function pushJson(L: LuaState, v: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw new Error(`Found too many nested data structures (${depth})`);
  if (v === null) lua.lua_pushlightuserdata(L, JSON_NULL);
  else if (typeof v === 'string') lua.lua_pushstring(L, to_luastring(v));
  else if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) lua.lua_pushinteger(L, v);
    else lua.lua_pushnumber(L, v);
  } else if (typeof v === 'boolean') lua.lua_pushboolean(L, v);
  else if (Array.isArray(v)) {
    lua.lua_createtable(L, v.length, 0);
    v.forEach((item, i) => {
      pushJson(L, item, depth + 1);
      lua.lua_rawseti(L, -2, i + 1);
    });
  } else {
    const entries = Object.entries(v as Record<string, unknown>);
    lua.lua_createtable(L, 0, entries.length);
    for (const [k, item] of entries) {
      lua.lua_pushstring(L, to_luastring(k));
      pushJson(L, item, depth + 1);
      lua.lua_rawset(L, -3);
    }
  }
}

/** Runs `f`, turning a JavaScript error into a Lua error with its message (as lua-cjson raises). */
function guarded(f: JsFunction): JsFunction {
  return (L) => {
    let n: number;
    try {
      n = f(L);
    } catch (err) {
      // A Lua error raised inside (the memory guard's) is not ours to reword.
      if (!(err instanceof Error)) throw err;
      lua.lua_pushstring(L, to_luastring(err.message));
      return lua.lua_error(L);
    }
    return n;
  };
}

export function openCjson(L: LuaState): void {
  register(L, 'cjson', {
    encode: guarded((L) => {
      if (lua.lua_gettop(L) !== 1) throw new Error('bad argument #1 to \'encode\' (expected 1 argument)');
      const out = new Writer();
      encodeValue(L, 1, 1, out);
      lua.lua_pushstring(L, out.result());
      return 1;
    }),
    decode: guarded((L) => {
      const text = Buffer.from(lauxlib.luaL_checkstring(L, 1)).toString('utf8');
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        throw new Error(`Expected value but found invalid token at character 1`);
      }
      pushJson(L, parsed, 1);
      return 1;
    }),
  });
  lua.lua_getglobal(L, to_luastring('cjson'));
  lua.lua_pushlightuserdata(L, JSON_NULL);
  lua.lua_setfield(L, -2, to_luastring('null'));
  lua.lua_pop(L, 1);
}

// ---- cmsgpack -----------------------------------------------------------------------------------

function packInt(w: Writer, n: number): void {
  if (n >= 0) {
    if (n <= 127) w.byte(n);
    else if (n <= 0xff) (w.byte(0xcc), w.byte(n));
    else if (n <= 0xffff) (w.byte(0xcd), w.num('u16', n));
    else if (n <= 0xffffffff) (w.byte(0xce), w.num('u32', n));
    else (w.byte(0xcf), w.num('u64', n));
  } else if (n >= -32) w.byte(n & 0xff);
  else if (n >= -128) (w.byte(0xd0), w.num('i8', n));
  else if (n >= -32768) (w.byte(0xd1), w.num('i16', n));
  else if (n >= -2147483648) (w.byte(0xd2), w.num('i32', n));
  else (w.byte(0xd3), w.num('i64', n));
}

function packValue(L: LuaState, idx: number, w: Writer, depth: number): void {
  idx = lua.lua_absindex(L, idx);
  switch (lua.lua_type(L, idx)) {
    case lua.LUA_TSTRING: {
      const s = lua.lua_tolstring(L, idx)!;
      if (s.length < 32) w.byte(0xa0 | s.length);
      else if (s.length <= 0xff) (w.byte(0xd9), w.byte(s.length));
      else if (s.length <= 0xffff) (w.byte(0xda), w.num('u16', s.length));
      else (w.byte(0xdb), w.num('u32', s.length));
      w.bytes(s);
      return;
    }
    case lua.LUA_TBOOLEAN:
      w.byte(lua.lua_toboolean(L, idx) ? 0xc3 : 0xc2);
      return;
    case lua.LUA_TNUMBER: {
      const n = lua.lua_tonumber(L, idx);
      if (Number.isInteger(n) && Math.abs(n) <= Number.MAX_SAFE_INTEGER) packInt(w, n);
      else if (Math.fround(n) === n) (w.byte(0xca), w.num('f32', n));
      else (w.byte(0xcb), w.num('f64', n));
      return;
    }
    case lua.LUA_TTABLE: {
      // lua-cmsgpack: nesting past 16 levels is packed as nil.
      if (depth > 16) {
        w.byte(0xc0);
        return;
      }
      let n = 0;
      let isArray = true;
      lua.lua_pushnil(L);
      while (lua.lua_next(L, idx)) {
        lua.lua_pop(L, 1);
        n++;
        if (!(lua.lua_type(L, -1) === lua.LUA_TNUMBER && lua.lua_isinteger(L, -1) && lua.lua_tointeger(L, -1) >= 1)) isArray = false;
      }
      if (isArray) for (let i = 1; i <= n && isArray; i++) isArray = lua.lua_rawgeti(L, idx, i) !== lua.LUA_TNIL && (lua.lua_pop(L, 1), true);
      if (isArray) {
        if (n <= 15) w.byte(0x90 | n);
        else if (n <= 0xffff) (w.byte(0xdc), w.num('u16', n));
        else (w.byte(0xdd), w.num('u32', n));
        for (let i = 1; i <= n; i++) {
          lua.lua_rawgeti(L, idx, i);
          packValue(L, -1, w, depth + 1);
          lua.lua_pop(L, 1);
        }
        return;
      }
      if (n <= 15) w.byte(0x80 | n);
      else if (n <= 0xffff) (w.byte(0xde), w.num('u16', n));
      else (w.byte(0xdf), w.num('u32', n));
      lua.lua_pushnil(L);
      while (lua.lua_next(L, idx)) {
        packValue(L, -2, w, depth + 1);
        packValue(L, -1, w, depth + 1);
        lua.lua_pop(L, 1);
      }
      return;
    }
    default:
      w.byte(0xc0);
  }
}

/** Decodes one value at `off` and pushes it; returns the offset after it. */
function unpackValue(L: LuaState, b: Buffer, off: number): number {
  const need = (n: number): void => {
    if (off + n > b.length) throw new Error('Missing bytes in input.');
  };
  need(1);
  const t = b[off++];
  const str = (len: number): number => {
    need(len);
    lua.lua_pushstring(L, b.subarray(off, off + len));
    return off + len;
  };
  const arr = (len: number): number => {
    lua.lua_createtable(L, len, 0);
    for (let i = 1; i <= len; i++) {
      off = unpackValue(L, b, off);
      lua.lua_rawseti(L, -2, i);
    }
    return off;
  };
  const map = (len: number): number => {
    lua.lua_createtable(L, 0, len);
    for (let i = 0; i < len; i++) {
      off = unpackValue(L, b, off);
      off = unpackValue(L, b, off);
      lua.lua_rawset(L, -3);
    }
    return off;
  };
  const int = (v: number | bigint): void => lua.lua_pushinteger(L, Number(v));
  if (t <= 0x7f) return (int(t), off);
  if (t >= 0xe0) return (int(t - 256), off);
  if ((t & 0xe0) === 0xa0) return str(t & 0x1f);
  if ((t & 0xf0) === 0x90) return arr(t & 0x0f);
  if ((t & 0xf0) === 0x80) return map(t & 0x0f);
  const fixed: Record<number, [number, (o: number) => number | bigint]> = {
    0xcc: [1, (o) => b.readUInt8(o)], 0xcd: [2, (o) => b.readUInt16BE(o)], 0xce: [4, (o) => b.readUInt32BE(o)],
    0xcf: [8, (o) => b.readBigUInt64BE(o)], 0xd0: [1, (o) => b.readInt8(o)], 0xd1: [2, (o) => b.readInt16BE(o)],
    0xd2: [4, (o) => b.readInt32BE(o)], 0xd3: [8, (o) => b.readBigInt64BE(o)],
  };
  const f = fixed[t];
  if (f !== undefined) {
    need(f[0]);
    int(f[1](off));
    return off + f[0];
  }
  switch (t) {
    case 0xc0: lua.lua_pushnil(L); return off;
    case 0xc2: lua.lua_pushboolean(L, false); return off;
    case 0xc3: lua.lua_pushboolean(L, true); return off;
    case 0xca: need(4); lua.lua_pushnumber(L, b.readFloatBE(off)); return off + 4;
    case 0xcb: need(8); lua.lua_pushnumber(L, b.readDoubleBE(off)); return off + 8;
    case 0xd9: case 0xc4: need(1); return (off++, str(b[off - 1]));
    case 0xda: case 0xc5: need(2); return (off += 2, str(b.readUInt16BE(off - 2)));
    case 0xdb: case 0xc6: need(4); return (off += 4, str(b.readUInt32BE(off - 4)));
    case 0xdc: need(2); return (off += 2, arr(b.readUInt16BE(off - 2)));
    case 0xdd: need(4); return (off += 4, arr(b.readUInt32BE(off - 4)));
    case 0xde: need(2); return (off += 2, map(b.readUInt16BE(off - 2)));
    case 0xdf: need(4); return (off += 4, map(b.readUInt32BE(off - 4)));
  }
  throw new Error('Bad data format in input.');
}

export function openCmsgpack(L: LuaState): void {
  register(L, 'cmsgpack', {
    pack: guarded((L) => {
      const n = lua.lua_gettop(L);
      if (n === 0) throw new Error('MessagePack pack needs input.');
      const w = new Writer();
      for (let i = 1; i <= n; i++) packValue(L, i, w, 0);
      lua.lua_pushstring(L, w.result());
      return 1;
    }),
    unpack: guarded((L) => {
      const b = Buffer.from(lauxlib.luaL_checkstring(L, 1));
      let off = 0;
      let count = 0;
      while (off < b.length) {
        off = unpackValue(L, b, off);
        count++;
      }
      return count;
    }),
  });
}
