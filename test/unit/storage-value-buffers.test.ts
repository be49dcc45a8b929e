import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestParser, type Args, type ParserLimits } from '../../src/protocol/parser.js';
import { ValueBuffers } from '../../src/storage/value-buffers.js';
import { READ_CACHE_MIN_VALUE_BYTES } from '../../src/storage/read-cache.js';
import { CHUNK_THRESHOLD } from '../../src/storage/chunks.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const LIMITS: ParserLimits = { maxBulkLen: 512 * MiB, maxArgs: 1024, maxQueryBuffer: 1024 * MiB };

function resp(...args: Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) parts.push(Buffer.from(`$${a.length}\r\n`), a, Buffer.from('\r\n'));
  return Buffer.concat(parts);
}

function feed(parser: RequestParser, input: Buffer, size: number): Args[] {
  const out: Args[] = [];
  for (let at = 0; at < input.length; at += size) parser.push(input.subarray(at, at + size), out);
  return out;
}

function pattern(length: number, seed: number): Buffer {
  const v = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) v[i] = (i * 31 + seed) & 0xff;
  return v;
}

test('the pooled lengths are those the read cache never keeps and staging never takes', () => {
  // A recycled buffer must be nobody's: ReadCache.put keeps values below its large class by reference.
  assert.equal(ValueBuffers.minLength, READ_CACHE_MIN_VALUE_BYTES);
  // Longer values are staged into chunks while they arrive and never reach the parser's buffers.
  assert.equal(ValueBuffers.maxLength, CHUNK_THRESHOLD);
  const pool = new ValueBuffers();
  assert.equal(pool.lend(ValueBuffers.minLength - 1, true), null);
  assert.equal(pool.lend(ValueBuffers.maxLength + 1, true), null);
  for (const [length, capacity] of [
    [256 * KiB, 256 * KiB],
    [256 * KiB + 1, 512 * KiB],
    [512 * KiB, 512 * KiB],
    [MiB, MiB],
  ]) {
    assert.equal(pool.lend(length, true)?.length, capacity + 2, `a bulk of ${length} bytes and its CRLF`);
  }
  pool.close();
});

test('only bulks of the pooled sizes and longer count as large-value traffic', () => {
  let traffic = 0;
  const pool = new ValueBuffers(() => traffic++);
  // The parser offers every bulk from 32 KiB; below the smallest class none switches malloc to its
  // busy trim threshold (malloc-trim.ts): the 10 GiB scale run of 64 KiB values kept ~20 MiB more resident.
  assert.equal(pool.lend(64 * KiB, true), null);
  assert.equal(pool.lend(ValueBuffers.minLength - 1, false), null);
  assert.equal(traffic, 0);
  assert.notEqual(pool.lend(ValueBuffers.minLength, true), null);
  assert.equal(traffic, 1);
  // Longer than the pool serves (staged into chunks): still traffic.
  assert.equal(pool.lend(ValueBuffers.maxLength + 1, true), null);
  assert.equal(traffic, 2);
  pool.close();
});

test('lend without fresh gives only idle buffers; recycle takes back only a claimed one, once', () => {
  const pool = new ValueBuffers();
  assert.equal(pool.lend(MiB, false), null, 'nothing idle yet: a declared length alone allocates nothing');
  const a = pool.lend(MiB, true)!;
  const value = a.subarray(0, 700 * KiB);
  pool.recycle(value);
  assert.equal(pool.recycled, 0, 'lent but not claimed by a write');
  assert.equal(pool.claim(value), true);
  pool.recycle(value);
  assert.equal(pool.recycled, 1);
  assert.equal(pool.idleBytes, MiB + 2);
  pool.recycle(value);
  assert.equal(pool.recycled, 1, 'a second recycle of the same value changes nothing');
  const b = pool.lend(900 * KiB, false)!;
  assert.equal(b.buffer, a.buffer, 'the idle buffer is lent again');
  assert.equal(pool.reuses, 1);
  assert.equal(pool.idleBytes, 0);
  // Claimed by two writes: neither may give it back.
  const v2 = b.subarray(0, 900 * KiB);
  assert.equal(pool.claim(v2), true);
  assert.equal(pool.claim(v2), false);
  pool.recycle(v2);
  assert.equal(pool.recycled, 1);
  // A slice that does not start at the buffer's start is not the value the write claimed.
  const c = pool.lend(300 * KiB, true)!;
  const offset = c.subarray(1, 300 * KiB);
  assert.equal(pool.claim(offset), true);
  pool.recycle(offset);
  assert.equal(pool.recycled, 1);
  // A Buffer the pool never lent is never taken in.
  const foreign = Buffer.alloc(MiB + 2);
  assert.equal(pool.claim(foreign), false);
  pool.recycle(foreign);
  assert.equal(pool.recycled, 1);
  pool.close();
});

test('idle buffers are capped, and let go after a quiet spell', async () => {
  const pool = new ValueBuffers();
  const lent = Array.from({ length: 40 }, () => pool.lend(MiB, true)!);
  for (const buf of lent) {
    pool.claim(buf.subarray(0, MiB));
    pool.recycle(buf.subarray(0, MiB));
  }
  assert.ok(pool.idleBytes <= 24 * MiB, `idle ${pool.idleBytes}`);
  assert.ok(pool.idleBytes >= 20 * MiB, `idle ${pool.idleBytes}`);
  pool.trim();
  assert.equal(pool.idleBytes, 0);
  assert.equal(pool.lend(MiB, false), null);
  pool.close();
});

test('the parser reads a pooled big bulk into a lent buffer, byte for byte, whatever the read sizes', () => {
  for (const size of [1, 7, 1000, 4096, 65536, 300_000]) {
    const pool = new ValueBuffers();
    // Warm the pool: one idle 1 MiB buffer, as a committed SET leaves it.
    const warm = pool.lend(MiB, true)!;
    pool.claim(warm.subarray(0, MiB));
    pool.recycle(warm.subarray(0, MiB));
    const parser = new RequestParser(LIMITS, undefined, pool);
    const v1 = pattern(MiB - 5, size);
    const v2 = pattern(600 * KiB, size + 1);
    const out = feed(parser, Buffer.concat([resp(Buffer.from('SET'), Buffer.from('k1'), v1), resp(Buffer.from('SET'), Buffer.from('k2'), v2, Buffer.from('EX'), Buffer.from('10'))]), size);
    assert.equal(out.length, 2);
    assert.ok(out[0][2].equals(v1), `read size ${size}: first value`);
    assert.ok(out[1][2].equals(v2), `read size ${size}: second value`);
    assert.deepEqual(out[1].slice(3).map(String), ['EX', '10']);
    assert.equal(out[0][2].buffer, warm.buffer, 'the first value was read into the idle buffer');
    // The second found nothing idle: gathered as it came, then joined into a buffer the pool lent fresh.
    assert.equal(pool.claim(out[1][2]), true);
    assert.equal(parser.buffered, 0);
    pool.close();
  }
});

test('the parser checks the CRLF after a lent bulk, and drops the buffer when the client goes', () => {
  const pool = new ValueBuffers();
  const warm = pool.lend(MiB, true)!;
  pool.claim(warm.subarray(0, MiB));
  pool.recycle(warm.subarray(0, MiB));
  const parser = new RequestParser(LIMITS, undefined, pool);
  const bad = Buffer.concat([Buffer.from(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${300 * KiB}\r\n`), pattern(300 * KiB, 3), Buffer.from('XY')]);
  assert.throws(() => feed(parser, bad, 65536), /expected '\\r\\n' after bulk data/);
  const parser2 = new RequestParser(LIMITS, undefined, pool);
  const half = Buffer.concat([Buffer.from(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${MiB}\r\n`), pattern(100 * KiB, 4)]);
  assert.deepEqual(feed(parser2, half, 65536), []);
  assert.equal(parser2.buffered, 100 * KiB);
  assert.equal(parser2.abandon().length, 2);
  assert.equal(parser2.buffered, 0);
  pool.close();
});
