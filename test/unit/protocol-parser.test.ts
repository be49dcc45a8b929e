import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError, RequestParser, splitInline, type Args, type BulkSink, type BulkStaging, type ParserLimits } from '../../src/protocol/parser.js';

const MiB = 1024 * 1024;
const INLINE_MAX = 64 * 1024;

const LIMITS: ParserLimits = { maxBulkLen: 512 * MiB, maxArgs: 1024 * 1024, maxQueryBuffer: 1024 * MiB };

function limits(over: Partial<ParserLimits> = {}): ParserLimits {
  return { ...LIMITS, ...over };
}

/** RESP multibulk encoding of one command. */
function resp(...args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a, 'utf8') : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

function bufs(...args: (string | Buffer)[]): Buffer[] {
  return args.map((a) => (typeof a === 'string' ? Buffer.from(a, 'utf8') : a));
}

/** Feeds `input` in chunks of the given sizes (cycled; the rest in one chunk when omitted). */
function feed(parser: RequestParser, input: Buffer, sizes: number[] = [input.length || 1]): Args[] {
  const out: Args[] = [];
  let i = 0;
  let k = 0;
  while (i < input.length) {
    const n = Math.max(1, sizes[k++ % sizes.length]);
    parser.push(input.subarray(i, i + n), out);
    i += n;
  }
  return out;
}

function parse(input: Buffer | string, sizes?: number[], lim: ParserLimits = LIMITS): Args[] {
  const buf = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const p = new RequestParser(lim);
  const out = feed(p, buf, sizes);
  assert.equal(p.buffered, 0, 'a complete stream leaves nothing buffered');
  return out;
}

/** Runs `fn`, asserts it throws a ProtocolError with exactly `message`, and returns the error. */
function expectProtocolError(fn: () => unknown, message: string): ProtocolError {
  let caught: unknown = undefined;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== undefined, `expected a ProtocolError "${message}", nothing was thrown`);
  assert.ok(caught instanceof ProtocolError, `expected a ProtocolError, got ${String(caught)}`);
  assert.ok(caught instanceof Error);
  assert.equal(caught.message, message);
  return caught;
}

function pushOnce(input: Buffer | string, lim: ParserLimits = LIMITS, out: Args[] = []): Args[] {
  const p = new RequestParser(lim);
  p.push(typeof input === 'string' ? Buffer.from(input, 'latin1') : input, out);
  return out;
}

/** A small deterministic PRNG so "random" chunkings are reproducible. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function patterned(len: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(len);
  const rnd = mulberry32(seed);
  for (let i = 0; i < len; i++) b[i] = (rnd() * 256) | 0;
  return b;
}

describe('RequestParser: multibulk', () => {
  test('a single command', () => {
    assert.deepEqual(parse('*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n'), [bufs('SET', 'a', 'b')]);
  });

  test('arguments are Buffers', () => {
    const [cmd] = parse('*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n');
    assert.equal(cmd.length, 2);
    for (const a of cmd) assert.ok(Buffer.isBuffer(a));
    assert.equal(cmd[0].toString('latin1'), 'GET');
    assert.equal(cmd[1].toString('latin1'), 'key');
  });

  test('pipelined commands in one chunk come out in order', () => {
    const stream = Buffer.concat([resp('SET', 'k', 'v'), resp('GET', 'k'), resp('PING'), resp('DEL', 'k', 'j', 'i')]);
    const expected = [bufs('SET', 'k', 'v'), bufs('GET', 'k'), bufs('PING'), bufs('DEL', 'k', 'j', 'i')];
    assert.deepEqual(parse(stream), expected);
  });

  test('pipelined commands split in two at every offset', () => {
    const stream = Buffer.concat([resp('SET', 'key', 'value'), resp('GET', 'key'), Buffer.from('PING\r\n'), resp('ECHO', '')]);
    const expected = [bufs('SET', 'key', 'value'), bufs('GET', 'key'), bufs('PING'), bufs('ECHO', '')];
    for (let cut = 0; cut <= stream.length; cut++) {
      const p = new RequestParser(LIMITS);
      const out: Args[] = [];
      p.push(stream.subarray(0, cut), out);
      p.push(stream.subarray(cut), out);
      assert.deepEqual(out, expected, `cut at ${cut}`);
      assert.equal(p.buffered, 0);
    }
  });

  test('pipelined commands fed one byte at a time', () => {
    const stream = Buffer.concat([resp('SET', 'key', 'value'), resp('GET', 'key'), resp('MSET', 'a', '1', 'b', '2')]);
    assert.deepEqual(parse(stream, [1]), [bufs('SET', 'key', 'value'), bufs('GET', 'key'), bufs('MSET', 'a', '1', 'b', '2')]);
  });

  test('commands are appended to out, never replacing what is there', () => {
    const out: Args[] = [bufs('EARLIER')];
    const p = new RequestParser(LIMITS);
    p.push(resp('PING'), out);
    assert.deepEqual(out, [bufs('EARLIER'), bufs('PING')]);
  });

  test('*0 and *-1 produce nothing, and what follows still parses', () => {
    assert.deepEqual(parse('*0\r\n'), []);
    assert.deepEqual(parse('*-1\r\n'), []);
    assert.deepEqual(parse('*0\r\n*-1\r\n*0\r\n'), []);
    assert.deepEqual(parse('*0\r\n*1\r\n$4\r\nPING\r\n*-1\r\nPING\r\n'), [bufs('PING'), bufs('PING')]);
    assert.deepEqual(parse('*0\r\n*1\r\n$4\r\nPING\r\n*-1\r\nPING\r\n', [1]), [bufs('PING'), bufs('PING')]);
  });

  test('empty bulk $0', () => {
    const out = parse('*2\r\n$4\r\nECHO\r\n$0\r\n\r\n');
    assert.deepEqual(out, [[Buffer.from('ECHO'), Buffer.alloc(0)]]);
    assert.equal(out[0][1].length, 0);
    assert.deepEqual(parse('*1\r\n$0\r\n\r\n', [1]), [[Buffer.alloc(0)]]);
  });

  test('binary safe: all 256 byte values and embedded CRLF', () => {
    const all = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) all[i] = i;
    const crlf = Buffer.from('a\r\nb\r\n\r\n*1\r\n$3\r\n');
    const stream = Buffer.concat([resp('SET', all, crlf), resp(crlf)]);
    for (const sizes of [undefined, [1], [3], [255]]) {
      const out = parse(stream, sizes);
      assert.equal(out.length, 2);
      assert.equal(out[0].length, 3);
      assert.ok(out[0][1].equals(all));
      assert.ok(out[0][2].equals(crlf));
      assert.ok(out[1][0].equals(crlf));
    }
  });

  test('small arguments do not alias the input chunk', () => {
    const chunk = resp('SET', 'key', 'value');
    const out = pushOnce(chunk);
    chunk.fill(0x21);
    assert.deepEqual(out, [bufs('SET', 'key', 'value')]);
  });

  test('bulk lengths up to the limits are accepted', () => {
    const lim = limits({ maxBulkLen: 10, maxArgs: 3, maxQueryBuffer: 30 });
    const ten = 'x'.repeat(10);
    assert.deepEqual(parse(resp(ten, ten, ten), undefined, lim), [bufs(ten, ten, ten)]);
    assert.deepEqual(parse(resp(ten, ten, ten), [1], lim), [bufs(ten, ten, ten)]);
  });

  test('the query buffer limit counts one command at a time', () => {
    const lim = limits({ maxQueryBuffer: 100 });
    const sixty = 'y'.repeat(60);
    const stream = Buffer.concat([resp(sixty), resp(sixty, 'z'.repeat(40)), resp(sixty)]);
    const expected = [bufs(sixty), bufs(sixty, 'z'.repeat(40)), bufs(sixty)];
    assert.deepEqual(parse(stream, undefined, lim), expected);
    // A small bulk waiting for its bytes is charged once, however many reads it takes.
    for (const sizes of [[1], [2], [7], [33]]) assert.deepEqual(parse(stream, sizes, lim), expected, `sizes ${sizes}`);
  });

  test('malformed and oversized length lines', () => {
    // 11 characters is the longest length accepted; a 12-character length is invalid.
    expectProtocolError(() => pushOnce('*1\r\n$100000000000\r\n'), 'Protocol error: invalid bulk length');
    expectProtocolError(() => pushOnce('*100000000000\r\n'), 'Protocol error: invalid multibulk length');
    expectProtocolError(() => pushOnce('*-\r\n'), 'Protocol error: invalid multibulk length');
    expectProtocolError(() => pushOnce('*\r\n'), 'Protocol error: invalid multibulk length');
    expectProtocolError(() => pushOnce('*1\r\n$\r\n'), 'Protocol error: invalid bulk length');
    expectProtocolError(() => pushOnce('*1\r\n$+3\r\nfoo\r\n'), 'Protocol error: invalid bulk length');
    expectProtocolError(() => pushOnce('*1\r\n$ 3\r\nfoo\r\n'), 'Protocol error: invalid bulk length');
  });
});

describe('RequestParser: inline commands', () => {
  test('PING, with CRLF and with LF only', () => {
    assert.deepEqual(parse('PING\r\n'), [bufs('PING')]);
    assert.deepEqual(parse('PING\n'), [bufs('PING')]);
  });

  test('SET a b, several commands, LF-only endings, extra blanks', () => {
    assert.deepEqual(parse('SET a b\r\n'), [bufs('SET', 'a', 'b')]);
    assert.deepEqual(parse('SET a b\nGET a\nGET b\n'), [bufs('SET', 'a', 'b'), bufs('GET', 'a'), bufs('GET', 'b')]);
    assert.deepEqual(parse('  SET \t a   b  \r\n'), [bufs('SET', 'a', 'b')]);
    assert.deepEqual(parse('SET a b\r\n', [1]), [bufs('SET', 'a', 'b')]);
  });

  test('empty and blank lines are skipped', () => {
    assert.deepEqual(parse('\r\n'), []);
    assert.deepEqual(parse('\n\n\r\n   \r\n\t\n'), []);
    assert.deepEqual(parse('\r\nPING\r\n\nECHO x\n\r\n'), [bufs('PING'), bufs('ECHO', 'x')]);
  });

  test('inline and multibulk mixed in one stream', () => {
    const stream = Buffer.concat([Buffer.from('PING\r\n'), resp('GET', 'a'), Buffer.from('SET a b\n'), resp('PING')]);
    const expected = [bufs('PING'), bufs('GET', 'a'), bufs('SET', 'a', 'b'), bufs('PING')];
    assert.deepEqual(parse(stream), expected);
    assert.deepEqual(parse(stream, [1]), expected);
  });

  test('double quotes with escapes', () => {
    assert.deepEqual(parse('SET k "a\\x41b"\r\n'), [bufs('SET', 'k', 'aAb')]);
    assert.deepEqual(parse('SET k "line\\nbreak"\r\n'), [bufs('SET', 'k', 'line\nbreak')]);
    assert.deepEqual(parse('SET k "say \\"hi\\""\r\n'), [bufs('SET', 'k', 'say "hi"')]);
    assert.deepEqual(parse('ECHO "\\r\\t\\b\\a\\\\\\q"\r\n'), [bufs('ECHO', '\r\t\b\x07\\q')]);
    assert.deepEqual(parse('ECHO "\\xff\\xFF\\x00\\x7f"\n'), [[Buffer.from('ECHO'), Buffer.from([0xff, 0xff, 0x00, 0x7f])]]);
    assert.deepEqual(parse('ECHO "with space" "" x\r\n'), [bufs('ECHO', 'with space', '', 'x')]);
  });

  test('\\x needs two hex digits, otherwise the x is taken literally', () => {
    assert.deepEqual(parse('ECHO "\\x4"\r\n'), [bufs('ECHO', 'x4')]);
    assert.deepEqual(parse('ECHO "\\xg1"\r\n'), [bufs('ECHO', 'xg1')]);
  });

  test("single quotes understand only \\'", () => {
    assert.deepEqual(parse("SET k 'it\\'s'\r\n"), [bufs('SET', 'k', "it's")]);
    assert.deepEqual(parse("SET k 'a\\nb \"c\"'\r\n"), [bufs('SET', 'k', 'a\\nb "c"')]);
    assert.deepEqual(parse("ECHO ''\n"), [bufs('ECHO', '')]);
  });

  test('quotes may start in the middle of an argument', () => {
    assert.deepEqual(parse('ECHO ab"c d"\r\n'), [bufs('ECHO', 'abc d')]);
    assert.deepEqual(parse("ECHO ab'c d'\r\n"), [bufs('ECHO', 'abc d')]);
  });

  test('only space, tab, CR and LF end an unquoted argument', () => {
    // Redis' sdssplitargs skips any isspace() between arguments but ends a bare word only on
    // space, \t, \r and \n, so vertical tab and form feed stay inside the argument.
    assert.deepEqual(parse('ECHO a\x0bb\x0cc\r\n'), [bufs('ECHO', 'a\x0bb\x0cc')]);
    assert.deepEqual(parse('\x0b\x0cECHO\x0b a\r\n'), [bufs('ECHO\x0b', 'a')]);
    assert.deepEqual(parse('ECHO a\rb\r\n'), [bufs('ECHO', 'a', 'b')]);
  });

  test('splitInline works on a sub-range', () => {
    const buf = Buffer.from('xxSET "a b" c\r\nyy');
    assert.deepEqual(splitInline(buf, 2, 13), bufs('SET', 'a b', 'c'));
    assert.deepEqual(splitInline(buf, 2, 2), []);
    assert.equal(splitInline(Buffer.from('"abc'), 0, 4), null);
  });

  test('a longer line whose newline is already in the buffer is accepted, as Redis does', () => {
    // Like Redis, the 64 KiB limit applies to bytes held while no newline has arrived.
    const line = Buffer.concat([Buffer.from('ECHO '), Buffer.alloc(70_000, 0x61), Buffer.from('\n')]);
    const out = parse(line);
    assert.equal(out.length, 1);
    assert.equal(out[0][1].length, 70_000);
  });

  test('an inline line of exactly 64 KiB without newline is held, not rejected', () => {
    const p = new RequestParser(LIMITS);
    const out: Args[] = [];
    p.push(Buffer.alloc(INLINE_MAX, 0x61), out);
    assert.equal(out.length, 0);
    assert.equal(p.buffered, INLINE_MAX);
    p.push(Buffer.from('\n'), out);
    assert.equal(out.length, 1);
    assert.equal(out[0].length, 1);
    assert.ok(out[0][0].equals(Buffer.alloc(INLINE_MAX, 0x61)));
    assert.equal(p.buffered, 0);
  });
});

describe('RequestParser: big bulks', () => {
  const payload = patterned(5 * MiB, 42);
  const stream = Buffer.concat([
    resp('SET', 'big', payload),
    resp('GET', 'big'),
    Buffer.from('PING\r\n'),
    resp('SET', 'small', 'v'),
  ]);

  function check(out: Args[], label: string): void {
    assert.equal(out.length, 4, label);
    assert.equal(out[0].length, 3, label);
    assert.equal(out[0][0].toString(), 'SET', label);
    assert.equal(out[0][1].toString(), 'big', label);
    assert.equal(out[0][2].length, payload.length, label);
    assert.ok(out[0][2].equals(payload), `${label}: payload intact`);
    assert.deepEqual(out.slice(1), [bufs('GET', 'big'), bufs('PING'), bufs('SET', 'small', 'v')], label);
  }

  test('5 MiB bulk in one chunk', () => {
    check(parse(stream), 'one chunk');
  });

  test('5 MiB bulk in 64 KiB chunks', () => {
    check(parse(stream, [64 * 1024]), '64 KiB');
  });

  test('5 MiB bulk in 7-byte chunks', () => {
    check(parse(stream, [7]), '7 bytes');
  });

  test('5 MiB bulk in random-size chunks', () => {
    for (const seed of [1, 2, 3]) {
      const rnd = mulberry32(seed);
      const sizes = Array.from({ length: 1000 }, () => 1 + Math.floor(rnd() * rnd() * 70000));
      check(parse(stream, sizes), `random seed ${seed}`);
    }
  });

  test('5 MiB bulk in 1-byte chunks', () => {
    check(parse(stream, [1]), '1 byte');
  });

  test('a big bulk followed by more commands in the same chunk', () => {
    const big = patterned(40 * 1024, 7);
    const s = Buffer.concat([resp('SET', 'k', big), resp('PING'), Buffer.from('ECHO hi\r\n'), resp('GET', 'k')]);
    const expected = [bufs('SET', 'k', big), bufs('PING'), bufs('ECHO', 'hi'), bufs('GET', 'k')];
    const headerEnd = resp('SET', 'k', big).indexOf('$40960\r\n') + 8;
    // Cuts in the header, in the payload (entering the big-bulk path), at the payload's CR and
    // LF, and inside the commands that follow.
    const cuts = [1, headerEnd - 1, headerEnd, headerEnd + 1, headerEnd + 1000, headerEnd + big.length - 1,
      headerEnd + big.length, headerEnd + big.length + 1, headerEnd + big.length + 2, headerEnd + big.length + 9];
    for (const cut of cuts) {
      const p = new RequestParser(LIMITS);
      const out: Args[] = [];
      p.push(s.subarray(0, cut), out);
      p.push(s.subarray(cut), out);
      assert.deepEqual(out, expected, `cut at ${cut}`);
      assert.equal(p.buffered, 0);
    }
    // Three pieces: the tail of the big bulk shares a chunk with a partial next command.
    const p = new RequestParser(LIMITS);
    const out: Args[] = [];
    p.push(s.subarray(0, headerEnd + 10), out);
    p.push(s.subarray(headerEnd + 10, headerEnd + big.length + 2 + 5), out);
    assert.equal(out.length, 1);
    assert.ok(out[0][2].equals(big));
    p.push(s.subarray(headerEnd + big.length + 2 + 5), out);
    assert.deepEqual(out, expected);
  });

  test('a bulk of exactly maxBulkLen gathered over many reads', () => {
    const big = patterned(100_000, 9);
    const lim = limits({ maxBulkLen: 100_000, maxQueryBuffer: 100_000 });
    assert.deepEqual(parse(resp(big), [3, 5000, 1, 60000], lim), [[big]]);
  });
});

describe('RequestParser: buffered', () => {
  test('counts the bytes of an unfinished small bulk and inline line', () => {
    const p = new RequestParser(LIMITS);
    const out: Args[] = [];
    assert.equal(p.buffered, 0);
    p.push(Buffer.from('*2\r\n$3\r\nGET\r\n$5\r\nhel'), out);
    assert.equal(out.length, 0);
    assert.equal(p.buffered, '$5\r\nhel'.length);
    p.push(Buffer.from('lo\r\nPIN'), out);
    assert.deepEqual(out, [bufs('GET', 'hello')]);
    assert.equal(p.buffered, 3);
    p.push(Buffer.from('G\r\n*1'), out);
    assert.deepEqual(out, [bufs('GET', 'hello'), bufs('PING')]);
    assert.equal(p.buffered, 2);
    p.push(Buffer.from('\r\n$4\r'), out);
    assert.equal(p.buffered, '$4\r'.length);
    p.push(Buffer.from('\nPING\r\n'), out);
    assert.equal(out.length, 3);
    assert.equal(p.buffered, 0);
  });

  test('counts the bytes gathered for a big bulk', () => {
    const p = new RequestParser(LIMITS);
    const out: Args[] = [];
    const big = patterned(50_000, 3);
    const s = Buffer.concat([resp('SET', 'k', big), resp('PING')]);
    const headerEnd = s.indexOf('$50000\r\n') + 8;
    p.push(s.subarray(0, headerEnd + 100), out);
    assert.equal(p.buffered, 100);
    p.push(s.subarray(headerEnd + 100, headerEnd + 30_000), out);
    assert.equal(p.buffered, 30_000);
    for (let i = headerEnd + 30_000; i < headerEnd + 30_050; i++) p.push(s.subarray(i, i + 1), out);
    assert.equal(p.buffered, 30_050);
    assert.equal(out.length, 0);
    // The payload's end, its CRLF and 6 bytes of the next command ("*1\r\n$4").
    p.push(s.subarray(headerEnd + 30_050, headerEnd + 50_002 + 6), out);
    assert.equal(out.length, 1);
    assert.ok(out[0][2].equals(big));
    assert.equal(p.buffered, 2);
    p.push(s.subarray(headerEnd + 50_002 + 6), out);
    assert.deepEqual(out, [bufs('SET', 'k', big), bufs('PING')]);
    assert.equal(p.buffered, 0);
  });
});

describe('RequestParser: protocol errors', () => {
  test('invalid multibulk length', () => {
    expectProtocolError(() => pushOnce('*abc\r\n'), 'Protocol error: invalid multibulk length');
    expectProtocolError(() => pushOnce('*1x\r\n'), 'Protocol error: invalid multibulk length');
  });

  test('multibulk count above maxArgs', () => {
    const lim = limits({ maxArgs: 2 });
    expectProtocolError(() => pushOnce('*3\r\n', lim), 'Protocol error: invalid multibulk length');
    assert.deepEqual(pushOnce(resp('GET', 'k'), lim), [bufs('GET', 'k')]);
  });

  test("expected '$'", () => {
    expectProtocolError(() => pushOnce('*1\r\n+foo\r\n'), "Protocol error: expected '$', got '+'");
    expectProtocolError(() => pushOnce('*2\r\n$1\r\na\r\n:1\r\n'), "Protocol error: expected '$', got ':'");
    // Reported as soon as the wrong byte arrives.
    const p = new RequestParser(LIMITS);
    p.push(Buffer.from('*1\r\n'), []);
    expectProtocolError(() => p.push(Buffer.from('+'), []), "Protocol error: expected '$', got '+'");
  });

  test('invalid bulk length', () => {
    expectProtocolError(() => pushOnce('*1\r\n$-5\r\n'), 'Protocol error: invalid bulk length');
    expectProtocolError(() => pushOnce('*1\r\n$-1\r\n'), 'Protocol error: invalid bulk length');
    expectProtocolError(() => pushOnce('*1\r\n$abc\r\n'), 'Protocol error: invalid bulk length');
    expectProtocolError(() => pushOnce('*1\r\n$11\r\n', limits({ maxBulkLen: 10 })), 'Protocol error: invalid bulk length');
    expectProtocolError(() => pushOnce(`*1\r\n$${512 * MiB + 1}\r\n`), 'Protocol error: invalid bulk length');
  });

  test('bulk data not followed by CRLF', () => {
    expectProtocolError(() => pushOnce('*1\r\n$3\r\nfooXY'), "Protocol error: expected '\\r\\n' after bulk data");
    expectProtocolError(() => pushOnce('*1\r\n$3\r\nfoo\rX'), "Protocol error: expected '\\r\\n' after bulk data");
    expectProtocolError(() => pushOnce('*1\r\n$3\r\nfoo\n\r'), "Protocol error: expected '\\r\\n' after bulk data");
    // The same for a big bulk gathered over several reads.
    const big = patterned(40_000, 5);
    const s = Buffer.concat([Buffer.from('*1\r\n$40000\r\n'), big, Buffer.from('XY')]);
    const p = new RequestParser(LIMITS);
    p.push(s.subarray(0, 1000), []);
    expectProtocolError(() => p.push(s.subarray(1000), []), "Protocol error: expected '\\r\\n' after bulk data");
  });

  test('length line with CR not followed by LF', () => {
    expectProtocolError(() => pushOnce('*1\rx\r\n'), "Protocol error: expected '\\r\\n' after length");
  });

  test('too big mbulk count string', () => {
    expectProtocolError(() => pushOnce(Buffer.concat([Buffer.from('*'), Buffer.alloc(INLINE_MAX, 0x31)])),
      'Protocol error: too big mbulk count string');
    // A CR far away does not save it.
    expectProtocolError(() => pushOnce(Buffer.concat([Buffer.from('*'), Buffer.alloc(INLINE_MAX + 10, 0x31), Buffer.from('\r\n')])),
      'Protocol error: too big mbulk count string');
    // Exactly 64 KiB is still waited for; one byte more is rejected.
    const p = new RequestParser(LIMITS);
    p.push(Buffer.concat([Buffer.from('*'), Buffer.alloc(INLINE_MAX - 1, 0x31)]), []);
    assert.equal(p.buffered, INLINE_MAX);
    expectProtocolError(() => p.push(Buffer.from('1'), []), 'Protocol error: too big mbulk count string');
  });

  test('too big bulk count string', () => {
    expectProtocolError(() => pushOnce(Buffer.concat([Buffer.from('*1\r\n$'), Buffer.alloc(INLINE_MAX, 0x31)])),
      'Protocol error: too big bulk count string');
  });

  test('too big inline request', () => {
    expectProtocolError(() => pushOnce(Buffer.alloc(INLINE_MAX + 1, 0x61)), 'Protocol error: too big inline request');
    const out: Args[] = [];
    expectProtocolError(() => pushOnce(Buffer.concat([Buffer.from('PING\r\nSET a b\n'), Buffer.alloc(INLINE_MAX + 1, 0x61)]), LIMITS, out),
      'Protocol error: too big inline request');
    assert.deepEqual(out, [bufs('PING'), bufs('SET', 'a', 'b')]);
    const p = new RequestParser(LIMITS);
    for (let i = 0; i < 64; i++) p.push(Buffer.alloc(1024, 0x20), []);
    assert.equal(p.buffered, INLINE_MAX);
    expectProtocolError(() => p.push(Buffer.from('x'), []), 'Protocol error: too big inline request');
  });

  test('unbalanced quotes', () => {
    expectProtocolError(() => pushOnce('SET k "abc\r\n'), 'Protocol error: unbalanced quotes in request');
    expectProtocolError(() => pushOnce("SET k 'abc\n"), 'Protocol error: unbalanced quotes in request');
    expectProtocolError(() => pushOnce('SET k "abc"def\r\n'), 'Protocol error: unbalanced quotes in request');
    expectProtocolError(() => pushOnce("SET k 'abc'def\r\n"), 'Protocol error: unbalanced quotes in request');
    expectProtocolError(() => pushOnce('SET k "abc\\"\r\n'), 'Protocol error: unbalanced quotes in request');
  });

  test('query buffer limit exceeded by the sum of one command', () => {
    const lim = limits({ maxQueryBuffer: 100 });
    expectProtocolError(() => pushOnce(resp('x'.repeat(60), 'y'.repeat(41)), lim), 'Protocol error: query buffer limit exceeded');
    expectProtocolError(() => pushOnce(resp('x'.repeat(101)), lim), 'Protocol error: query buffer limit exceeded');
    // Rejected from the length line alone, before the payload arrives.
    expectProtocolError(() => pushOnce('*2\r\n$50\r\n' + 'x'.repeat(50) + '\r\n$51\r\n', lim), 'Protocol error: query buffer limit exceeded');
    // A big bulk above the limit.
    expectProtocolError(() => pushOnce('*1\r\n$100000\r\n', limits({ maxQueryBuffer: 99_999 })), 'Protocol error: query buffer limit exceeded');
  });

  test('commands completed before the bad bytes are still delivered', () => {
    const out: Args[] = [];
    const bad = Buffer.concat([Buffer.from('PING\r\n'), resp('GET', 'a'), Buffer.from('*1\r\n+foo\r\n'), resp('NEVER')]);
    expectProtocolError(() => pushOnce(bad, LIMITS, out), "Protocol error: expected '$', got '+'");
    assert.deepEqual(out, [bufs('PING'), bufs('GET', 'a')]);

    const cases: [string, string][] = [
      ['*abc\r\n', 'Protocol error: invalid multibulk length'],
      ['*1\r\n$abc\r\n', 'Protocol error: invalid bulk length'],
      ['*1\r\n$1\r\nabc', "Protocol error: expected '\\r\\n' after bulk data"],
      ['SET "a\r\n', 'Protocol error: unbalanced quotes in request'],
    ];
    for (const [tail, message] of cases) {
      const o: Args[] = [];
      const p = new RequestParser(LIMITS);
      p.push(resp('SET', 'k', 'v'), o);
      expectProtocolError(() => p.push(Buffer.concat([resp('GET', 'k'), Buffer.from('ECHO x\n'), Buffer.from(tail, 'latin1')]), o), message);
      assert.deepEqual(o, [bufs('SET', 'k', 'v'), bufs('GET', 'k'), bufs('ECHO', 'x')], tail);
    }

    const big = patterned(40_000, 11);
    const o: Args[] = [];
    const p = new RequestParser(LIMITS);
    const s = Buffer.concat([resp('SET', 'k', big), resp('PING'), Buffer.from('*x\r\n')]);
    p.push(s.subarray(0, 500), o);
    expectProtocolError(() => p.push(s.subarray(500), o), 'Protocol error: invalid multibulk length');
    assert.deepEqual(o, [bufs('SET', 'k', big), bufs('PING')]);
  });
});

describe('staged bulks (streamed writes)', () => {
  /** A sink recording what it is given; end() returns a marker the test can recognise. */
  class RecordingSink implements BulkSink {
    parts: Buffer[] = [];
    ended = false;
    aborted = false;
    readonly marker = Buffer.alloc(0);
    write(part: Buffer): void {
      assert.ok(!this.ended && !this.aborted, 'no bytes after end or abort');
      this.parts.push(Buffer.from(part));
    }
    end(): Buffer {
      this.ended = true;
      return this.marker;
    }
    abort(): void {
      this.aborted = true;
    }
    get bytes(): Buffer {
      return Buffer.concat(this.parts);
    }
  }

  /** Stages the value argument (index 2) of SET when it is at least `minLength` bytes. */
  function staging(minLength: number): { sinks: RecordingSink[]; staging: BulkStaging; offered: number[] } {
    const sinks: RecordingSink[] = [];
    const offered: number[] = [];
    return {
      sinks,
      offered,
      staging: {
        minLength,
        open: (args, length) => {
          offered.push(length);
          if (args.length !== 2 || args[0].toString().toLowerCase() !== 'set') return null;
          const s = new RecordingSink();
          sinks.push(s);
          return s;
        },
      },
    };
  }

  test('the payload goes to the sink byte for byte whatever the chunking; the command gets the marker; small bulks stay in memory', () => {
    const value = patterned(300_000, 3);
    const other = patterned(200_000, 4);
    const input = Buffer.concat([resp('SET', 'k', value, 'EX', '10'), resp('ECHO', other), resp('SET', 'small', 'v'), resp('PING')]);
    for (const sizes of [[input.length], [1], [7, 4096, 13], [65536], [2, 300_001]]) {
      const st = staging(100_000);
      const p = new RequestParser(LIMITS, st.staging);
      const out = feed(p, input, sizes);
      assert.equal(st.sinks.length, 1, `sizes ${sizes}`);
      const sink = st.sinks[0];
      assert.ok(sink.ended && !sink.aborted);
      assert.ok(sink.bytes.equals(value));
      assert.equal(out.length, 4);
      assert.equal(out[0][2], sink.marker, 'the command receives what end() returned');
      assert.deepEqual(out[0].map((a, i) => (i === 2 ? null : a.toString())), ['SET', 'k', null, 'EX', '10']);
      assert.ok(out[1][1].equals(other), 'a big bulk the sink refuses is read into memory');
      assert.deepEqual(out.slice(2), [bufs('SET', 'small', 'v'), bufs('PING')]);
      assert.deepEqual(st.offered, [300_000, 200_000], 'only bulks of minLength and up are offered');
      assert.equal(p.buffered, 0);
    }
  });

  test('staged bytes are not held in the query buffer, but count against its limit as in Redis', () => {
    const value = patterned(500_000, 5);
    const st = staging(100_000);
    const p = new RequestParser(limits({ maxQueryBuffer: 1024 * 1024 }), st.staging);
    const out: Args[] = [];
    const input = resp('SET', 'k', value);
    p.push(input.subarray(0, 400_000), out);
    assert.ok(p.buffered < 1000, `buffered ${p.buffered}`);
    p.push(input.subarray(400_000), out);
    assert.equal(out.length, 1);
    assert.ok(st.sinks[0].bytes.equals(value));

    // The same command under a limit smaller than its value is refused before anything is staged.
    const small = staging(100_000);
    const q = new RequestParser(limits({ maxQueryBuffer: 64 * 1024 }), small.staging);
    expectProtocolError(() => q.push(input.subarray(0, 400_000), []), 'Protocol error: query buffer limit exceeded');
    assert.equal(small.sinks.length, 0);
  });

  test('a bad end of bulk aborts the sink; abandon() aborts one in progress and returns the arguments read', () => {
    const value = patterned(150_000, 6);
    for (const tail of ['XY', '\rX', 'X\n']) {
      const st = staging(100_000);
      const p = new RequestParser(LIMITS, st.staging);
      const input = Buffer.concat([Buffer.from(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${value.length}\r\n`), value, Buffer.from(tail, 'latin1')]);
      expectProtocolError(() => feed(p, input, [1000, 1]), "Protocol error: expected '\\r\\n' after bulk data");
      assert.ok(st.sinks[0].aborted && !st.sinks[0].ended, tail);
    }
    const st = staging(100_000);
    const p = new RequestParser(LIMITS, st.staging);
    const out: Args[] = [];
    p.push(Buffer.concat([Buffer.from(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${value.length}\r\n`), value.subarray(0, 1000)]), out);
    assert.deepEqual(p.abandon(), bufs('SET', 'k'));
    assert.ok(st.sinks[0].aborted);
    assert.deepEqual(out, []);
    // The parser starts afresh.
    p.push(resp('PING'), out);
    assert.deepEqual(out, [bufs('PING')]);
  });
});
