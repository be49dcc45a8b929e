/** The DUMP codec: CRC-64 (Redis' Jones variant), LZF decoding, RDB string and hash encodings. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { crc64, Crc64 } from '../../src/protocol/crc64.js';
import { lzfDecompress, LzfError } from '../../src/protocol/lzf.js';
import {
  decodeDump,
  decodeFunctionsDump,
  DumpPayloadError,
  encodeFunctionsDump,
  RDB_OPCODE_FUNCTION2,
  RDB_OPCODE_FUNCTION_PRE_GA,
  encodeDump,
  encodeDumpAsync,
  listpackEntries,
  verifyDumpPayload,
  ziplistEntries,
  type DumpValue,
} from '../../src/protocol/rdb.js';

/** DUMPs made by redis-server 7.0.15 (hex). */
const REDIS_LZF_STRING = '00c31240780361626361e04d020278797ae0100201797a0a0075275d1254c48198'; // "abc"*30 + "xyz"*10
const REDIS_LISTPACK_HASH =
  '10406c6c000000160081610201018162028568656c6c6f06816302f178ec03816402f4141a99be1c00000009816602f270110104816702f400e68ee7fdffffff09816a02d06002816b02f2404b4c04816c028001816d02f4ffffffffffffff7f09816e02f4000000000000008009ff0a00207f51edd4fc75a1';

/** Bit-by-bit CRC-64/Jones with BigInt, straight from the definition, to check the sliced table. */
function referenceCrc(data: Uint8Array): bigint {
  const poly = 0x95ac9329ac4bc9b5n;
  let c = 0n;
  for (const byte of data) {
    c ^= BigInt(byte);
    for (let i = 0; i < 8; i++) c = c & 1n ? (c >> 1n) ^ poly : c >> 1n;
  }
  return c;
}

/** A payload with a correct footer around `body` (RDB version `version`). */
function withFooter(body: Buffer, version = 10): Buffer {
  const head = Buffer.concat([body, Buffer.from([version & 0xff, version >> 8])]);
  return Buffer.concat([head, new Crc64().update(head).digestLE()]);
}

const text = (b: Buffer): string => b.toString('latin1');
const MAX = 1 << 20;

describe('CRC-64 (Jones, as Redis)', () => {
  it('has Redis\' test vector: crc64("123456789") = 0xe9c6d914c4b8d9ca', () => {
    assert.equal(crc64(Buffer.from('123456789')), 0xe9c6d914c4b8d9can);
  });

  it('equals the bit-by-bit definition for every length around the 8-byte slicing, in one piece or several', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70 }), fc.nat(70), (data, cut) => {
        const split = Math.min(cut, data.length);
        const want = referenceCrc(data);
        assert.equal(crc64(data), want);
        assert.equal(new Crc64().update(data, 0, split).update(data, split).value(), want);
      }),
      { numRuns: 300 },
    );
  });
});

describe('LZF decoding', () => {
  it('decodes literal runs and overlapping back references', () => {
    // "abc" literal (ctrl 2), then a back reference of length 9 at distance 3 (ctrl (7<<5) with
    // extra length byte 0: len 7 + 0 + 2 = 9).
    const input = Buffer.from([0x02, 0x61, 0x62, 0x63, 0xe0, 0x00, 0x02]);
    assert.equal(text(lzfDecompress(input, 12)), 'abcabcabcabc');
  });

  it('refuses corrupt input with an LzfError, never a bad read or write', () => {
    const cases: [number[], number][] = [
      [[0x02, 0x61, 0x62], 3], // literal run past the end of the input
      [[0x02, 0x61, 0x62, 0x63], 2], // output longer than declared
      [[0x02, 0x61, 0x62, 0x63], 4], // shorter than declared
      [[0x00, 0x61, 0x20, 0x05], 4], // back reference before the start
      [[0x00, 0x61, 0xe0], 10], // back reference cut short
      [[0x00, 0x61, 0xe0, 0x01], 10], // long back reference cut short
    ];
    for (const [bytes, len] of cases) assert.throws(() => lzfDecompress(Buffer.from(bytes), len), LzfError, JSON.stringify(bytes));
  });

  it('decodes what redis-server 7.0 LZF-compressed in a DUMP', () => {
    const v = decodeDump(Buffer.from(REDIS_LZF_STRING, 'hex'), MAX);
    assert.deepEqual(v.type === 'string' && text(v.value), 'abc'.repeat(30) + 'xyz'.repeat(10));
  });
});

describe('DUMP payloads', () => {
  it('encodes short integers as Redis does (int8/int16/int32), and other strings raw', () => {
    const hex = (s: string): string => encodeDump({ type: 'string', value: Buffer.from(s) }).subarray(0, -10).toString('hex');
    assert.equal(hex('12'), '00c00c');
    assert.equal(hex('-300'), '00c1d4fe');
    assert.equal(hex('70000'), '00c270110100');
    assert.equal(hex('2147483648'), '000a32313437343833363438'); // past int32: raw
    assert.equal(hex('012'), '0003303132'); // not string2ll's form: raw
    assert.equal(hex('-0'), '00022d30');
    assert.equal(hex(''), '0000');
  });

  it('uses the 6, 14 and 32-bit length encodings at their boundaries, and round-trips them', () => {
    for (const [len, head] of [
      [63, '003f'],
      [64, '004040'],
      [16383, '007fff'],
      [16384, '008000004000'],
    ] as const) {
      const value = Buffer.alloc(len, 0x78);
      const payload = encodeDump({ type: 'string', value });
      assert.equal(payload.subarray(0, head.length / 2).toString('hex'), head);
      assert.ok(verifyDumpPayload(payload));
      assert.deepEqual(decodeDump(payload, MAX), { type: 'string', value });
    }
  });

  it('writes RDB version 10 and a CRC-64 footer; the async encoder (big values) writes the same bytes', async () => {
    const value: DumpValue = { type: 'hash', fields: [[Buffer.from('f'), Buffer.alloc(3 << 20, 1)], [Buffer.from('n'), Buffer.from('7')]] };
    const payload = encodeDump(value);
    assert.deepEqual(payload.subarray(-10, -8), Buffer.from([10, 0]));
    assert.deepEqual(await encodeDumpAsync(value), payload);
    assert.deepEqual(decodeDump(payload, 4 << 20), value);
  });

  it('reads a listpack hash with every integer width that redis-server 7.0 dumped', () => {
    const v = decodeDump(Buffer.from(REDIS_LISTPACK_HASH, 'hex'), MAX);
    assert.equal(v.type, 'hash');
    const got = v.type === 'hash' ? v.fields.map(([f, x]) => `${text(f)}=${text(x)}`) : [];
    assert.deepEqual(got, [
      'a=1', 'b=hello', 'c=-5000', 'd=123456789012', 'f=70000', 'g=-9000000000', 'j=-4000', 'k=5000000', 'l=',
      'm=9223372036854775807', 'n=-9223372036854775808',
    ]);
  });

  it('reads a ziplist hash (RDB_TYPE_HASH_ZIPLIST, written by Redis before 7.0), including a 5-byte prevlen', () => {
    const long = 'L'.repeat(300);
    const zl = ziplist([Buffer.from('s'), 'int:12', Buffer.from('i16'), 'int:-300', Buffer.from('big'), Buffer.from(long), Buffer.from('after'), 'int:-2']);
    assert.deepEqual(ziplistEntries(zl).map(text), ['s', '12', 'i16', '-300', 'big', long, 'after', '-2']);
    const payload = withFooter(Buffer.concat([Buffer.from([13]), rdbString(zl)]), 9);
    const v = decodeDump(payload, MAX);
    assert.deepEqual(v.type === 'hash' && v.fields.map(([f, x]) => `${text(f)}=${text(x)}`), ['s=12', 'i16=-300', `big=${long}`, 'after=-2']);
  });

  it('accepts RDB versions up to 12 and refuses newer ones, or a wrong checksum, as a checksum error', () => {
    const body = Buffer.from('0003616263', 'hex');
    assert.ok(verifyDumpPayload(withFooter(body, 11)));
    assert.ok(verifyDumpPayload(withFooter(body, 12)));
    assert.ok(!verifyDumpPayload(withFooter(body, 13)));
    const flipped = withFooter(body);
    flipped[2] ^= 1;
    assert.ok(!verifyDumpPayload(flipped));
    for (const p of [withFooter(body, 13), flipped, Buffer.alloc(9)]) {
      assert.throws(() => decodeDump(p, MAX), (e: unknown) => e instanceof DumpPayloadError && e.reason === 'checksum');
    }
  });

  it('refuses other types, empty and duplicate-field hashes, and huge declared lengths as format errors, without allocating them', () => {
    const format = (body: string): void =>
      assert.throws(() => decodeDump(withFooter(Buffer.from(body, 'hex')), MAX), (e: unknown) => e instanceof DumpPayloadError && e.reason === 'format', body);
    format('0201c001'); // a set
    format('0400'); // an empty hash
    format('0402016101620161016'.padEnd(20, '3')); // field "a" twice
    format('0481' + '3fffffffffffffff'); // 2^62 pairs declared, none there
    format('0080ffffffff'); // a 4 GiB string declared
    format('00c3' + '04' + '80ffffffff' + '0000000000'); // LZF: 4 GiB out of 4 bytes
    format('00c3' + '02' + '7fff' + '0000'); // LZF: beyond LZF's largest expansion
    format('00c4'); // unknown string encoding
    // Bytes after the object are ignored, as Redis' restoreCommand ignores them.
    assert.deepEqual(decodeDump(withFooter(Buffer.from('0003616263ff', 'hex')), MAX), { type: 'string', value: Buffer.from('abc') });
  });

  it('bounds the decoded bytes of a whole payload by the limit', () => {
    const value: DumpValue = { type: 'hash', fields: [[Buffer.from('a'), Buffer.alloc(600)], [Buffer.from('b'), Buffer.alloc(600)]] };
    assert.throws(() => decodeDump(encodeDump(value), 1000), DumpPayloadError);
    assert.deepEqual(decodeDump(encodeDump(value), 2000), value);
  });

  it('never throws anything but a DumpPayloadError on mutated or random payloads (fuzz)', () => {
    const seeds = [
      Buffer.from(REDIS_LISTPACK_HASH, 'hex'),
      Buffer.from(REDIS_LZF_STRING, 'hex'),
      encodeDump({ type: 'hash', fields: [[Buffer.from('x'), Buffer.from('12')], [Buffer.from('yy'), Buffer.alloc(70, 2)]] }),
      withFooter(Buffer.concat([Buffer.from([13]), rdbString(ziplist([Buffer.from('a'), 'int:5']))])),
    ];
    fc.assert(
      fc.property(
        fc.nat(seeds.length - 1),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        (which, edits, cut) => {
          const seed = seeds[which];
          let body = Buffer.from(seed.subarray(0, -10));
          for (const [at, byte] of edits) body[at % body.length] = byte;
          if (cut % 3 === 0) body = body.subarray(0, cut % (body.length + 1));
          try {
            decodeDump(withFooter(body), MAX);
          } catch (err) {
            assert.ok(err instanceof DumpPayloadError, String(err));
          }
        },
      ),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          decodeDump(withFooter(Buffer.from(bytes)), MAX);
        } catch (err) {
          assert.ok(err instanceof DumpPayloadError, String(err));
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('listpack entries', () => {
  it('checks the back length and the declared count', () => {
    const good = Buffer.from(REDIS_LISTPACK_HASH, 'hex');
    // The listpack inside the payload: type byte, then a 14-bit length (0x40 0x6c = 108 bytes).
    const lp = Buffer.from(good.subarray(3, 3 + 108));
    assert.equal(listpackEntries(lp).length, 22);
    const badCount = Buffer.from(lp);
    badCount.writeUInt16LE(21, 4);
    assert.throws(() => listpackEntries(badCount), DumpPayloadError);
    const badBacklen = Buffer.from(lp);
    badBacklen[8] = 5; // the first entry's back length (entry "a": 0x81 0x61, backlen 2)
    assert.throws(() => listpackEntries(badBacklen), DumpPayloadError);
  });
});

/** An RDB raw string: 6/14/32-bit length, then the bytes. */
function rdbString(b: Buffer): Buffer {
  if (b.length < 64) return Buffer.concat([Buffer.from([b.length]), b]);
  if (b.length < 16384) return Buffer.concat([Buffer.from([0x40 | (b.length >> 8), b.length & 0xff]), b]);
  const head = Buffer.alloc(5);
  head[0] = 0x80;
  head.writeUInt32BE(b.length, 1);
  return Buffer.concat([head, b]);
}

/** A ziplist (src/ziplist.c) of strings and 'int:N' integers, built from the format's definition. */
function ziplist(entries: (Buffer | string)[]): Buffer {
  const parts: Buffer[] = [];
  let prev = 0;
  let offset = 10;
  let tail = 10;
  for (const e of entries) {
    const prevlen = prev < 254 ? Buffer.from([prev]) : Buffer.concat([Buffer.from([0xfe]), u32le(prev)]);
    let body: Buffer;
    if (typeof e === 'string') {
      const n = Number(e.slice(4));
      if (n >= 0 && n <= 12) body = Buffer.from([0xf1 + n]);
      else {
        body = Buffer.alloc(3);
        body[0] = 0xc0;
        body.writeInt16LE(n, 1);
      }
    } else if (e.length < 64) body = Buffer.concat([Buffer.from([e.length]), e]);
    else body = Buffer.concat([Buffer.from([0x40 | (e.length >> 8), e.length & 0xff]), e]);
    const entry = Buffer.concat([prevlen, body]);
    tail = offset;
    offset += entry.length;
    prev = entry.length;
    parts.push(entry);
  }
  const total = offset + 1;
  const head = Buffer.alloc(10);
  head.writeUInt32LE(total, 0);
  head.writeUInt32LE(tail, 4);
  head.writeUInt16LE(entries.length, 8);
  return Buffer.concat([head, ...parts, Buffer.from([0xff])]);
}

function u32le(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n, 0);
  return b;
}

describe('FUNCTION DUMP payloads', () => {
  const withFooter = (body: Buffer): Buffer => {
    const head = Buffer.concat([body, Buffer.from([10, 0])]);
    return Buffer.concat([head, new Crc64().update(head).digestLE()]);
  };
  const str = (s: string): Buffer => Buffer.concat([Buffer.from([s.length]), Buffer.from(s)]);

  it('round-trips library codes; an empty dump is the footer alone', () => {
    const codes = [Buffer.from("#!lua name=a\nredis.register_function('a', function() return 1 end)"), Buffer.from('#!lua name=b\n' + 'x'.repeat(70_000))];
    assert.deepEqual(decodeFunctionsDump(encodeFunctionsDump(codes), 1 << 20), codes);
    assert.equal(encodeFunctionsDump([]).length, 10);
    assert.deepEqual(decodeFunctionsDump(encodeFunctionsDump([]), 1 << 20), []);
  });

  it('reads the 7.0-rc format (opcode 246: name, engine, description, body) as rdbFunctionLoad rebuilds it', () => {
    const payload = withFooter(Buffer.concat([Buffer.from([RDB_OPCODE_FUNCTION_PRE_GA]), str('lib'), str('LUA'), Buffer.from([1]), str('desc'), str('return 1')]));
    assert.deepEqual(decodeFunctionsDump(payload, 1 << 20), [Buffer.from('#!LUA name=lib\nreturn 1')]);
  });

  it("refuses with Redis' messages", () => {
    const message = (p: Buffer): string => {
      try {
        decodeFunctionsDump(p, 1 << 20);
        return 'accepted';
      } catch (err) {
        return (err as Error).message;
      }
    };
    assert.equal(message(Buffer.from('junk')), 'DUMP payload version or checksum are wrong');
    assert.equal(message(withFooter(Buffer.from([0, 1, 0x61]))), 'given type is not a function');
    assert.equal(message(withFooter(Buffer.from([RDB_OPCODE_FUNCTION2, 0x40]))), 'Failed loading library payload');
  });
});
