import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ErrorReply,
  NO_REPLY,
  NULL_ARRAY,
  OK,
  PinnedBulk,
  PONG,
  QUEUED,
  ReplyEncoder,
  RespMap,
  RespSet,
  SimpleString,
  Verbatim,
  encodeReply,
  type ProtocolVersion,
  type Reply,
} from '../../src/protocol/reply.js';

/** Asserts the exact bytes of `reply` in RESP2 and RESP3; expectations are latin1 strings (one char per byte). */
function bytes(reply: Reply, resp2: string, resp3: string = resp2): void {
  assert.equal(encodeReply(reply, 2).toString('latin1'), resp2, 'RESP2');
  assert.equal(encodeReply(reply, 3).toString('latin1'), resp3, 'RESP3');
}

/** The UTF-8 bytes of `s` as a latin1 string, for building exact expectations. */
function u8(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

function encodeWith(enc: ReplyEncoder, replies: Reply[], proto: ProtocolVersion): Buffer[] {
  for (const r of replies) enc.write(r, proto);
  return enc.take();
}

describe('reply encoding', () => {
  test('encodeReply defaults to RESP2', () => {
    assert.equal(encodeReply(null).toString('latin1'), '$-1\r\n');
  });

  test('null', () => {
    bytes(null, '$-1\r\n', '_\r\n');
  });

  test('NULL_ARRAY', () => {
    bytes(NULL_ARRAY, '*-1\r\n', '_\r\n');
  });

  test('integers', () => {
    bytes(0, ':0\r\n');
    bytes(42, ':42\r\n');
    bytes(-7, ':-7\r\n');
    bytes(-1, ':-1\r\n');
    bytes(Number.MAX_SAFE_INTEGER, ':9007199254740991\r\n');
    bytes(Number.MIN_SAFE_INTEGER, ':-9007199254740991\r\n');
  });

  test('Buffer bulks, binary safe', () => {
    bytes(Buffer.from('hello'), '$5\r\nhello\r\n');
    const all = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) all[i] = i;
    bytes(all, `$256\r\n${all.toString('latin1')}\r\n`);
    bytes(Buffer.from('a\r\nb'), '$4\r\na\r\nb\r\n');
  });

  test('string bulks use the UTF-8 byte length', () => {
    bytes('hello', '$5\r\nhello\r\n');
    bytes('héllo', `$6\r\n${u8('héllo')}\r\n`);
    bytes('€', `$3\r\n\xe2\x82\xac\r\n`);
    bytes('😀', `$4\r\n\xf0\x9f\x98\x80\r\n`);
    assert.equal(encodeReply('日本語', 2).toString('utf8'), '$9\r\n日本語\r\n');
  });

  test('empty bulk', () => {
    bytes('', '$0\r\n\r\n');
    bytes(Buffer.alloc(0), '$0\r\n\r\n');
  });

  test('simple strings', () => {
    bytes(OK, '+OK\r\n');
    bytes(PONG, '+PONG\r\n');
    bytes(QUEUED, '+QUEUED\r\n');
    bytes(new SimpleString('café'), `+${u8('café')}\r\n`);
    bytes(new SimpleString(''), '+\r\n');
  });

  test('errors, with CR/LF in the message folded to a space', () => {
    bytes(new ErrorReply('ERR unknown command'), '-ERR unknown command\r\n');
    bytes(new ErrorReply('ERR a\r\nb'), '-ERR a b\r\n');
    bytes(new ErrorReply('ERR a\nb\rc'), '-ERR a b c\r\n');
    bytes(new ErrorReply('ERR naïve'), `-${u8('ERR naïve')}\r\n`);
  });

  test('ErrorReply.code', () => {
    assert.equal(new ErrorReply('WRONGTYPE Operation against a key').code, 'WRONGTYPE');
    assert.equal(new ErrorReply('ERR x').code, 'ERR');
    assert.equal(new ErrorReply('NOAUTH').code, 'NOAUTH');
  });

  test('arrays, empty and nested', () => {
    bytes([], '*0\r\n');
    bytes([1, 'a'], '*2\r\n:1\r\n$1\r\na\r\n');
    bytes(
      [1, ['a', null, [Buffer.from('b')], NULL_ARRAY], [], OK],
      '*4\r\n:1\r\n*4\r\n$1\r\na\r\n$-1\r\n*1\r\n$1\r\nb\r\n*-1\r\n*0\r\n+OK\r\n',
      '*4\r\n:1\r\n*4\r\n$1\r\na\r\n_\r\n*1\r\n$1\r\nb\r\n_\r\n*0\r\n+OK\r\n',
    );
  });

  test('maps: % in RESP3, a flat array in RESP2', () => {
    bytes(new RespMap([]), '*0\r\n', '%0\r\n');
    bytes(
      new RespMap([
        ['a', 1],
        ['b', [2, 3]],
        [Buffer.from('c'), null],
      ]),
      '*6\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n*2\r\n:2\r\n:3\r\n$1\r\nc\r\n$-1\r\n',
      '%3\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n*2\r\n:2\r\n:3\r\n$1\r\nc\r\n_\r\n',
    );
    // Nested map inside an array inside a map.
    bytes(
      new RespMap([['m', [new RespMap([['k', 'v']])]]]),
      '*2\r\n$1\r\nm\r\n*1\r\n*2\r\n$1\r\nk\r\n$1\r\nv\r\n',
      '%1\r\n$1\r\nm\r\n*1\r\n%1\r\n$1\r\nk\r\n$1\r\nv\r\n',
    );
  });

  test('sets: ~ in RESP3, an array in RESP2', () => {
    bytes(new RespSet([]), '*0\r\n', '~0\r\n');
    bytes(new RespSet(['x', 5, new RespSet(['y'])]), '*3\r\n$1\r\nx\r\n:5\r\n*1\r\n$1\r\ny\r\n', '~3\r\n$1\r\nx\r\n:5\r\n~1\r\n$1\r\ny\r\n');
  });

  test('verbatim: = with a txt: prefix in RESP3, a bulk in RESP2', () => {
    bytes(new Verbatim('hello'), '$5\r\nhello\r\n', '=9\r\ntxt:hello\r\n');
    bytes(new Verbatim(''), '$0\r\n\r\n', '=4\r\ntxt:\r\n');
    bytes(new Verbatim('# Server\r\nredis_version:7.2.0\r\n'), '$31\r\n# Server\r\nredis_version:7.2.0\r\n\r\n',
      '=35\r\ntxt:# Server\r\nredis_version:7.2.0\r\n\r\n');
    bytes(new Verbatim('héllo'), `$6\r\n${u8('héllo')}\r\n`, `=10\r\ntxt:${u8('héllo')}\r\n`);
  });

  test('NO_REPLY writes nothing', () => {
    assert.equal(encodeReply(NO_REPLY, 2).length, 0);
    assert.equal(encodeReply(NO_REPLY, 3).length, 0);
    const enc = new ReplyEncoder();
    enc.write(NO_REPLY, 2);
    assert.equal(enc.pending, 0);
    assert.deepEqual(enc.take(), []);
    enc.write(OK, 2);
    enc.write(NO_REPLY, 3);
    enc.write(1, 2);
    assert.equal(Buffer.concat(enc.take()).toString('latin1'), '+OK\r\n:1\r\n');
  });

  test('big simple strings and errors (longer than a slab)', () => {
    const long = 'e'.repeat(100_000);
    bytes(new ErrorReply(`ERR ${long}`), `-ERR ${long}\r\n`);
    bytes(new SimpleString(long), `+${long}\r\n`);
    bytes(long, `$100000\r\n${long}\r\n`);
    const uni = 'é'.repeat(40_000);
    bytes(new Verbatim(uni), `$80000\r\n${u8(uni)}\r\n`, `=80004\r\ntxt:${u8(uni)}\r\n`);
  });
});

describe('ReplyEncoder', () => {
  test('a 1 MiB Buffer is passed through without copying', () => {
    for (const proto of [2, 3] as const) {
      const big = Buffer.alloc(1024 * 1024, 0x61);
      const enc = new ReplyEncoder();
      enc.write('before', proto);
      enc.write(big, proto);
      enc.write('after', proto);
      assert.equal(enc.pending, '$6\r\nbefore\r\n'.length + '$1048576\r\n'.length + big.length + 2 + '$5\r\nafter\r\n'.length);
      const chunks = enc.take();
      assert.ok(chunks.some((c) => c === big), 'the very same Buffer object is among the chunks');
      assert.equal(enc.pending, 0);
      const all = Buffer.concat(chunks);
      const expected = Buffer.concat([Buffer.from('$6\r\nbefore\r\n$1048576\r\n'), big, Buffer.from('\r\n$5\r\nafter\r\n')]);
      assert.ok(all.equals(expected));
    }
  });

  test('a big Buffer inside an array keeps its place', () => {
    const big = Buffer.alloc(20_000, 0x62);
    const enc = new ReplyEncoder();
    enc.write([1, big, 2, big], 2);
    const chunks = enc.take();
    assert.equal(chunks.filter((c) => c === big).length, 2);
    const expected = Buffer.concat([Buffer.from('*4\r\n:1\r\n$20000\r\n'), big, Buffer.from('\r\n:2\r\n$20000\r\n'), big, Buffer.from('\r\n')]);
    assert.ok(Buffer.concat(chunks).equals(expected));
  });

  test('10,000 small replies equal the concatenation of their encodings, in few chunks', () => {
    const samples: Reply[] = [OK, 1234, -5, null, 'value', Buffer.from([0, 1, 2, 255]), new ErrorReply('ERR x'), ['a', 1, null],
      new RespMap([['k', 'v']]), new RespSet([1, 2]), new Verbatim('txt'), NULL_ARRAY, NO_REPLY, 'ü'.repeat(50), ''];
    const replies: Reply[] = [];
    for (let i = 0; i < 10_000; i++) {
      const r = samples[i % samples.length];
      replies.push(i % 7 === 0 ? `key:${i}` : i % 11 === 0 ? i : r);
    }
    for (const proto of [2, 3] as const) {
      const enc = new ReplyEncoder();
      for (const r of replies) enc.write(r, proto);
      const expected = Buffer.concat(replies.map((r) => encodeReply(r, proto)));
      assert.equal(enc.pending, expected.length);
      const chunks = enc.take();
      const got = Buffer.concat(chunks);
      assert.equal(got.length, expected.length);
      assert.ok(got.equals(expected), `RESP${proto}`);
      assert.ok(chunks.length <= Math.ceil(expected.length / (64 * 1024)) + 2, `${chunks.length} chunks for ${expected.length} bytes`);
    }
  });

  test('take() returns only what is new since the last take()', () => {
    const enc = new ReplyEncoder();
    enc.write(OK, 2);
    assert.equal(enc.pending, 5);
    assert.equal(Buffer.concat(enc.take()).toString(), '+OK\r\n');
    assert.equal(enc.pending, 0);
    assert.deepEqual(enc.take(), []);
    enc.write(7, 2);
    assert.equal(Buffer.concat(enc.take()).toString(), ':7\r\n');
  });

  test('slab regions already taken are never overwritten', () => {
    const enc = new ReplyEncoder();
    const first = encodeWith(enc, ['alpha', 1, OK, ['x', 'y']], 2);
    const firstCopy = first.map((c) => Buffer.from(c));
    const firstExpected = '$5\r\nalpha\r\n:1\r\n+OK\r\n*2\r\n$1\r\nx\r\n$1\r\ny\r\n';
    assert.equal(Buffer.concat(first).toString('latin1'), firstExpected);

    // More small writes (landing in the same slab), then enough to spill into new slabs, with
    // takes in between.
    const second = encodeWith(enc, ['beta', 2], 2);
    assert.equal(Buffer.concat(second).toString('latin1'), '$4\r\nbeta\r\n:2\r\n');
    const secondCopy = second.map((c) => Buffer.from(c));
    const filler: Reply[] = [];
    for (let i = 0; i < 20_000; i++) filler.push(`filler-${i}`);
    const third = encodeWith(enc, filler, 3);
    assert.ok(Buffer.concat(third).equals(Buffer.concat(filler.map((r) => encodeReply(r, 3)))));
    enc.write(new ErrorReply('ERR ' + 'z'.repeat(70_000)), 2);
    enc.write(Buffer.alloc(30_000, 0x7a), 2);
    enc.write('tail', 2);
    enc.take();

    first.forEach((c, i) => assert.ok(c.equals(firstCopy[i]), `first chunk ${i} unchanged`));
    second.forEach((c, i) => assert.ok(c.equals(secondCopy[i]), `second chunk ${i} unchanged`));
    assert.equal(Buffer.concat(first).toString('latin1'), firstExpected);
  });
});

test('bulk headers and integers written digit by digit equal their decimal text', () => {
  for (const n of [0, 1, 9, 10, 11, 99, 100, 999, 1000, 1024, 65535, 1048576, 123456789]) {
    assert.equal(encodeReply(Buffer.alloc(n, 0x61)).subarray(0, String(n).length + 3).toString('latin1'), `$${n}\r\n`);
    assert.equal(encodeReply(n).toString('latin1'), `:${n}\r\n`);
  }
  for (const n of [Number.MAX_SAFE_INTEGER, 2 ** 40 + 7, -1, -10, 2 ** 60]) assert.equal(encodeReply(n).toString('latin1'), `:${n}\r\n`);
  assert.equal(encodeReply(OK).toString('latin1'), '+OK\r\n');
});

test('a lent bulk (PinnedBulk) is framed like any bulk, its large pieces pass without a copy, and it is released once taken', () => {
  const pieces = [Buffer.alloc(65_536, 'a'), Buffer.alloc(65_536, 'b'), Buffer.from('tail')];
  let released = 0;
  const lent = new PinnedBulk(pieces, 131_076, () => released++);
  const enc = new ReplyEncoder();
  enc.write(lent, 2);
  enc.write(OK, 2);
  const out = enc.take();
  assert.equal(Buffer.concat(out).equals(Buffer.concat([Buffer.from('$131076\r\n'), ...pieces, Buffer.from('\r\n+OK\r\n')])), true);
  assert.ok(out.includes(pieces[0]) && out.includes(pieces[1]), 'the 64 KiB pieces themselves, not copies');
  assert.equal(released, 0, 'not before the socket has taken them');
  const release = enc.takeRelease();
  assert.equal(enc.takeRelease(), null);
  release!();
  assert.equal(released, 1);
  // encodeReply (one-off writes) copies, so it releases at once.
  assert.equal(encodeReply(new PinnedBulk([Buffer.from('xyz')], 3, () => released++), 3).toString(), '$3\r\nxyz\r\n');
  assert.equal(released, 2);
});
