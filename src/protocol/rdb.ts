/**
 * Redis' DUMP serialization for the two kinds of value this server has: a string (a plain blob)
 * and a hash (a namespace). A payload is `RDB type byte + object + 2-byte RDB version (LE) +
 * CRC-64 of everything before it (LE)` — Redis' createDumpPayload / verifyDumpPayload
 * (src/cluster.c) and rdbSaveObject / rdbLoadObject (src/rdb.c).
 *
 * Written: RDB_TYPE_STRING and RDB_TYPE_HASH with RDB version 10, so redis-server 7.0 restores what
 * we dump. Read: strings in all three encodings (raw, int-encoded, LZF-compressed) and hashes as
 * RDB_TYPE_HASH, RDB_TYPE_HASH_ZIPLIST (older Redis) and RDB_TYPE_HASH_LISTPACK (7.0 and later),
 * from RDB versions up to 12 (Redis 7.4/8.0: strings and these hash types are unchanged there).
 *
 * Decoding never trusts a declared length: strings are slices of the payload after a bounds
 * check, LZF output is bounded by `maxBytes` and by LZF's largest expansion, and element counts
 * only bound loops that consume input, so nothing is allocated beyond what the payload can hold.
 */
import { Crc64 } from './crc64.js';
import { lzfDecompress, LzfError } from './lzf.js';

/** The RDB version this server writes into payloads: Redis 7.0's, the oldest that must read them. */
export const RDB_VERSION_WRITTEN = 10;
/** The newest RDB version accepted (7.2 writes 11, 7.4 and 8.0 write 12). */
export const RDB_VERSION_ACCEPTED = 12;

export const RDB_TYPE_STRING = 0;
export const RDB_TYPE_LIST = 1;
export const RDB_TYPE_SET = 2;
export const RDB_TYPE_ZSET = 3;
export const RDB_TYPE_HASH = 4;
export const RDB_TYPE_HASH_ZIPLIST = 13;
export const RDB_TYPE_HASH_LISTPACK = 16;

export type DumpValue =
  | { readonly type: 'string'; readonly value: Buffer }
  | { readonly type: 'hash'; readonly fields: ReadonlyArray<readonly [Buffer, Buffer]> };

/**
 * Why a payload was refused: `checksum` (too short, RDB version too new, CRC mismatch: Redis'
 * "DUMP payload version or checksum are wrong") or `format` (anything else: "Bad data format").
 */
export class DumpPayloadError extends Error {
  constructor(
    readonly reason: 'checksum' | 'format',
    message: string,
  ) {
    super(message);
  }
}

// ---- footer -----------------------------------------------------------------------------------

const FOOTER = 10;

/** The RDB version and checksum at the end of a payload are right (verifyDumpPayload). */
export function verifyDumpPayload(payload: Buffer): boolean {
  if (payload.length < FOOTER) return false;
  const footer = payload.length - FOOTER;
  const version = payload[footer] | (payload[footer + 1] << 8);
  if (version > RDB_VERSION_ACCEPTED) return false;
  const crc = new Crc64().update(payload, 0, payload.length - 8).digestLE();
  return crc.equals(payload.subarray(payload.length - 8));
}

const VERSION_BYTES = Buffer.from([RDB_VERSION_WRITTEN & 0xff, RDB_VERSION_WRITTEN >> 8]);

/** Appends Redis' footer (RDB version 10, CRC-64) to a serialized object. */
function withFooter(body: Buffer[]): Buffer {
  const crc = new Crc64();
  for (const part of body) crc.update(part);
  crc.update(VERSION_BYTES);
  return Buffer.concat([...body, VERSION_BYTES, crc.digestLE()]);
}

/** The checksum pass yields to the event loop after this many bytes (about 2 ms of CRC). */
const CRC_SLICE = 1 << 20;

/**
 * As encodeDump, but a large value's checksum is computed a slice per event-loop turn, so DUMP of
 * a big blob does not stall other clients.
 */
export async function encodeDumpAsync(value: DumpValue): Promise<Buffer> {
  const body = dumpBody(value);
  const crc = new Crc64();
  let sinceYield = 0;
  for (const part of body) {
    for (let at = 0; at < part.length; ) {
      const end = Math.min(part.length, at + CRC_SLICE - sinceYield);
      crc.update(part, at, end);
      sinceYield += end - at;
      at = end;
      if (sinceYield >= CRC_SLICE) {
        sinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }
  crc.update(VERSION_BYTES);
  return Buffer.concat([...body, VERSION_BYTES, crc.digestLE()]);
}

// ---- encoding ---------------------------------------------------------------------------------

/** rdbSaveLen: 6-bit, 14-bit, 32-bit or 64-bit length (the wider ones big-endian). */
function lengthBytes(n: number): Buffer {
  if (n < 64) return Buffer.from([n]);
  if (n < 16384) return Buffer.from([0x40 | (n >> 8), n & 0xff]);
  if (n <= 0xffffffff) {
    const b = Buffer.allocUnsafe(5);
    b[0] = 0x80;
    b.writeUInt32BE(n, 1);
    return b;
  }
  const b = Buffer.allocUnsafe(9);
  b[0] = 0x81;
  b.writeBigUInt64BE(BigInt(n), 1);
  return b;
}

/** A decimal integer exactly as Redis' string2ll accepts it (no "-0", "+1", "01"). */
const STRING2LL = /^(0|-?[1-9][0-9]*)$/;

/** rdbSaveRawString without LZF: int-encoded when Redis would (≤ 11 bytes, an int32), else raw. */
function stringBytes(s: Buffer): Buffer[] {
  if (s.length > 0 && s.length <= 11) {
    const text = s.toString('latin1');
    if (STRING2LL.test(text)) {
      const v = Number(text);
      if (v >= -128 && v <= 127) return [Buffer.from([0xc0, v & 0xff])];
      if (v >= -32768 && v <= 32767) {
        const b = Buffer.allocUnsafe(3);
        b[0] = 0xc1;
        b.writeInt16LE(v, 1);
        return [b];
      }
      if (v >= -2147483648 && v <= 2147483647) {
        const b = Buffer.allocUnsafe(5);
        b[0] = 0xc2;
        b.writeInt32LE(v, 1);
        return [b];
      }
    }
  }
  return [lengthBytes(s.length), s];
}

/**
 * The DUMP payload of a value. Strings are not LZF-compressed (Redis compresses those over 20
 * bytes when it can), so a long compressible string's payload differs from Redis' but restores to
 * the same value anywhere.
 */
export function encodeDump(value: DumpValue): Buffer {
  return withFooter(dumpBody(value));
}

/** The serialized object without the footer. */
function dumpBody(value: DumpValue): Buffer[] {
  if (value.type === 'string') return [Buffer.from([RDB_TYPE_STRING]), ...stringBytes(value.value)];
  const body: Buffer[] = [Buffer.from([RDB_TYPE_HASH]), lengthBytes(value.fields.length)];
  for (const [field, v] of value.fields) body.push(...stringBytes(field), ...stringBytes(v));
  return body;
}

// ---- decoding ---------------------------------------------------------------------------------

function bad(why: string): DumpPayloadError {
  return new DumpPayloadError('format', why);
}

/** The largest output 1 byte of LZF input can stand for: a 3-byte back reference copies 264. */
const LZF_MAX_RATIO = 88;

class Reader {
  pos = 0;
  /** Bytes of decoded strings so far, against `maxBytes`. */
  decoded = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly end: number,
    private readonly maxBytes: number,
  ) {}

  get left(): number {
    return this.end - this.pos;
  }

  byte(): number {
    if (this.pos >= this.end) throw bad('payload cut short');
    return this.buf[this.pos++];
  }

  take(n: number): Buffer {
    if (n > this.left) throw bad('payload cut short');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** rdbLoadLenByRef: a length, or (encoded) one of the RDB_ENC_* special encodings. */
  length(): { encoded: boolean; n: number } {
    const first = this.byte();
    const kind = first >> 6;
    if (kind === 3) return { encoded: true, n: first & 0x3f };
    if (kind === 0) return { encoded: false, n: first & 0x3f };
    if (kind === 1) return { encoded: false, n: ((first & 0x3f) << 8) | this.byte() };
    if (first === 0x80) return { encoded: false, n: this.take(4).readUInt32BE(0) };
    if (first === 0x81) {
      const n = this.take(8).readBigUInt64BE(0);
      // No length in a payload this size can be larger; keep it a safe number.
      return { encoded: false, n: n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n) };
    }
    throw bad('unknown length encoding');
  }

  plainLength(): number {
    const { encoded, n } = this.length();
    if (encoded) throw bad('encoded value where a length belongs');
    return n;
  }

  /** rdbGenericLoadStringObject: raw, int-encoded (as its decimal text) or LZF-compressed. */
  string(): Buffer {
    const { encoded, n } = this.length();
    let out: Buffer;
    if (!encoded) out = this.take(n);
    else if (n === 0) out = Buffer.from(String(this.take(1).readInt8(0)));
    else if (n === 1) out = Buffer.from(String(this.take(2).readInt16LE(0)));
    else if (n === 2) out = Buffer.from(String(this.take(4).readInt32LE(0)));
    else if (n === 3) {
      const clen = this.plainLength();
      const len = this.plainLength();
      if (clen > this.left) throw bad('payload cut short');
      if (len > clen * LZF_MAX_RATIO || this.decoded + len > this.maxBytes) throw bad('LZF string longer than allowed');
      try {
        out = lzfDecompress(this.take(clen), len);
      } catch (err) {
        if (err instanceof LzfError) throw bad(err.message);
        throw err;
      }
    } else throw bad('unknown string encoding');
    this.decoded += out.length;
    if (this.decoded > this.maxBytes) throw bad('value longer than allowed');
    return out;
  }
}

/**
 * The value a DUMP payload holds. `maxBytes` bounds the decoded bytes (the server's largest
 * value); the footer is checked first, so a payload that fails it is a `checksum` error.
 */
export function decodeDump(payload: Buffer, maxBytes: number): DumpValue {
  if (!verifyDumpPayload(payload)) throw new DumpPayloadError('checksum', 'DUMP payload version or checksum are wrong');
  // The object is read from the whole payload, footer included, as Redis' rio buffer does: a string
  // whose declared length runs into the footer is accepted by redis-server, so it is here too.
  const r = new Reader(payload, payload.length, maxBytes);
  const type = r.byte();
  switch (type) {
    case RDB_TYPE_STRING:
      return { type: 'string', value: r.string() };
    case RDB_TYPE_HASH: {
      let count = r.plainLength();
      if (count === 0) throw bad('empty hash');
      const fields: [Buffer, Buffer][] = [];
      // The count only bounds a loop that consumes input: a huge one runs out of payload.
      while (count-- > 0) fields.push([r.string(), r.string()]);
      return { type: 'hash', fields: unique(fields) };
    }
    case RDB_TYPE_HASH_ZIPLIST:
      return { type: 'hash', fields: unique(pairs(ziplistEntries(r.string()))) };
    case RDB_TYPE_HASH_LISTPACK:
      return { type: 'hash', fields: unique(pairs(listpackEntries(r.string()))) };
    default:
      throw new DumpPayloadError('format', `unsupported RDB type ${type}`);
  }
}

// ---- FUNCTION DUMP / RESTORE -------------------------------------------------------------------

/** rdb.h: a library's code (7.0 GA on), and the 7.0-rc format (name, engine, description, body). */
export const RDB_OPCODE_FUNCTION2 = 245;
export const RDB_OPCODE_FUNCTION_PRE_GA = 246;

/**
 * FUNCTION DUMP's payload (functionDumpCommand, rdbSaveFunctions): per library RDB_OPCODE_FUNCTION2
 * and its code as an RDB string, then the RDB version and CRC-64 footer. The code is not
 * LZF-compressed (Redis compresses it), so the bytes differ from Redis' but restore the same.
 */
export function encodeFunctionsDump(codes: readonly Buffer[]): Buffer {
  const body: Buffer[] = [];
  for (const code of codes) body.push(Buffer.from([RDB_OPCODE_FUNCTION2]), ...stringBytes(code));
  return withFooter(body);
}

/**
 * The library codes of a FUNCTION DUMP payload (functionRestoreCommand, rdbFunctionLoad), in
 * order. Errors carry Redis' messages: "DUMP payload version or checksum are wrong", "given type
 * is not a function", "Failed loading library payload" (and the 7.0-rc format's own).
 */
export function decodeFunctionsDump(payload: Buffer, maxBytes: number): Buffer[] {
  if (!verifyDumpPayload(payload)) throw new DumpPayloadError('checksum', 'DUMP payload version or checksum are wrong');
  const r = new Reader(payload, payload.length, maxBytes);
  const codes: Buffer[] = [];
  const read = <T>(f: () => T, why: string): T => {
    try {
      return f();
    } catch (err) {
      if (err instanceof DumpPayloadError) throw bad(why);
      throw err;
    }
  };
  // As Redis: read until the last 10 bytes, which are the footer.
  while (payload.length - r.pos > FOOTER) {
    const type = r.byte();
    if (type === RDB_OPCODE_FUNCTION2) {
      codes.push(read(() => r.string(), 'Failed loading library payload'));
    } else if (type === RDB_OPCODE_FUNCTION_PRE_GA) {
      const name = read(() => r.string(), 'Failed loading library name');
      const engine = read(() => r.string(), 'Failed loading engine name');
      const hasDesc = read(() => r.plainLength(), 'Failed loading library description indicator');
      if (hasDesc !== 0) read(() => r.string(), 'Failed loading library description');
      const body = read(() => r.string(), 'Failed loading library blob');
      codes.push(Buffer.concat([Buffer.from(`#!${engine.toString('latin1')} name=${name.toString('latin1')}\n`, 'latin1'), body]));
    } else {
      throw bad('given type is not a function');
    }
  }
  return codes;
}

/** The RDB type byte of a valid payload, for error messages (import reports skipped types). */
export function dumpType(payload: Buffer): number | null {
  return payload.length > FOOTER ? payload[0] : null;
}

function pairs(entries: Buffer[]): [Buffer, Buffer][] {
  if (entries.length === 0) throw bad('empty hash');
  if (entries.length % 2 !== 0) throw bad('hash with an odd number of entries');
  const out: [Buffer, Buffer][] = [];
  for (let i = 0; i < entries.length; i += 2) out.push([entries[i], entries[i + 1]]);
  return out;
}

/** A hash with a field twice is corrupt (Redis: "Duplicate hash fields detected"). */
function unique(fields: [Buffer, Buffer][]): [Buffer, Buffer][] {
  const seen = new Set<string>();
  for (const [f] of fields) {
    const id = f.toString('latin1');
    if (seen.has(id)) throw bad('duplicate hash field');
    seen.add(id);
  }
  return fields;
}

function intText(v: bigint | number): Buffer {
  return Buffer.from(String(v));
}

/** The entries of a listpack (src/listpack.c), integers as their decimal text. */
export function listpackEntries(lp: Buffer): Buffer[] {
  if (lp.length < 7) throw bad('listpack too short');
  if (lp.readUInt32LE(0) !== lp.length) throw bad('listpack size mismatch');
  const declared = lp.readUInt16LE(4);
  if (lp[lp.length - 1] !== 0xff) throw bad('listpack without terminator');
  const end = lp.length - 1;
  const out: Buffer[] = [];
  let p = 6;
  const need = (n: number): void => {
    if (p + n > end) throw bad('listpack entry past the end');
  };
  while (p < end) {
    const start = p;
    const b = lp[p];
    let value: Buffer;
    if (b < 0x80) {
      value = intText(b);
      p += 1;
    } else if ((b & 0xc0) === 0x80) {
      const len = b & 0x3f;
      need(1 + len);
      value = lp.subarray(p + 1, p + 1 + len);
      p += 1 + len;
    } else if ((b & 0xe0) === 0xc0) {
      need(2);
      const u = ((b & 0x1f) << 8) | lp[p + 1];
      value = intText(u >= 4096 ? u - 8192 : u);
      p += 2;
    } else if ((b & 0xf0) === 0xe0) {
      need(2);
      const len = ((b & 0x0f) << 8) | lp[p + 1];
      need(2 + len);
      value = lp.subarray(p + 2, p + 2 + len);
      p += 2 + len;
    } else if (b === 0xf0) {
      need(5);
      const len = lp.readUInt32LE(p + 1);
      need(5 + len);
      value = lp.subarray(p + 5, p + 5 + len);
      p += 5 + len;
    } else if (b === 0xf1) {
      need(3);
      value = intText(lp.readInt16LE(p + 1));
      p += 3;
    } else if (b === 0xf2) {
      need(4);
      value = intText(lp.readIntLE(p + 1, 3));
      p += 4;
    } else if (b === 0xf3) {
      need(5);
      value = intText(lp.readInt32LE(p + 1));
      p += 5;
    } else if (b === 0xf4) {
      need(9);
      value = intText(lp.readBigInt64LE(p + 1));
      p += 9;
    } else throw bad('unknown listpack encoding');
    // The back length: the entry's encoded size again, 7 bits a byte (lpEncodeBacklen).
    const size = p - start;
    const backlen = size <= 127 ? 1 : size < 16383 ? 2 : size < 2097151 ? 3 : size < 268435455 ? 4 : 5;
    need(backlen);
    let decoded = 0;
    for (let i = 0; i < backlen; i++) decoded = decoded * 128 + (lp[p + i] & 0x7f);
    if (decoded !== size) throw bad('listpack back length mismatch');
    p += backlen;
    out.push(value);
  }
  if (declared !== 0xffff && declared !== out.length) throw bad('listpack count mismatch');
  return out;
}

/** The entries of a ziplist (src/ziplist.c), integers as their decimal text. */
export function ziplistEntries(zl: Buffer): Buffer[] {
  if (zl.length < 11) throw bad('ziplist too short');
  if (zl.readUInt32LE(0) !== zl.length) throw bad('ziplist size mismatch');
  const tail = zl.readUInt32LE(4);
  const declared = zl.readUInt16LE(8);
  if (zl[zl.length - 1] !== 0xff) throw bad('ziplist without terminator');
  const end = zl.length - 1;
  const out: Buffer[] = [];
  let p = 10;
  let prevSize = 0;
  let lastStart = 10;
  const need = (n: number): void => {
    if (p + n > end) throw bad('ziplist entry past the end');
  };
  while (p < end) {
    const start = p;
    lastStart = start;
    need(1);
    let prevlen = zl[p];
    if (prevlen === 0xfe) {
      need(5);
      prevlen = zl.readUInt32LE(p + 1);
      p += 5;
    } else p += 1;
    if (prevlen !== prevSize) throw bad('ziplist previous length mismatch');
    need(1);
    const e = zl[p];
    let value: Buffer;
    if (e >> 6 === 0) {
      const len = e & 0x3f;
      need(1 + len);
      value = zl.subarray(p + 1, p + 1 + len);
      p += 1 + len;
    } else if (e >> 6 === 1) {
      need(2);
      const len = ((e & 0x3f) << 8) | zl[p + 1];
      need(2 + len);
      value = zl.subarray(p + 2, p + 2 + len);
      p += 2 + len;
    } else if (e === 0x80) {
      need(5);
      const len = zl.readUInt32BE(p + 1);
      need(5 + len);
      value = zl.subarray(p + 5, p + 5 + len);
      p += 5 + len;
    } else if (e === 0xc0) {
      need(3);
      value = intText(zl.readInt16LE(p + 1));
      p += 3;
    } else if (e === 0xd0) {
      need(5);
      value = intText(zl.readInt32LE(p + 1));
      p += 5;
    } else if (e === 0xe0) {
      need(9);
      value = intText(zl.readBigInt64LE(p + 1));
      p += 9;
    } else if (e === 0xf0) {
      need(4);
      value = intText(zl.readIntLE(p + 1, 3));
      p += 4;
    } else if (e === 0xfe) {
      need(2);
      value = intText(zl.readInt8(p + 1));
      p += 2;
    } else if (e >= 0xf1 && e <= 0xfd) {
      value = intText((e & 0x0f) - 1);
      p += 1;
    } else throw bad('unknown ziplist encoding');
    prevSize = p - start;
    out.push(value);
  }
  if (out.length > 0 && tail !== lastStart) throw bad('ziplist tail offset mismatch');
  if (declared !== 0xffff && declared !== out.length) throw bad('ziplist count mismatch');
  return out;
}
