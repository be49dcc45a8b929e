/**
 * Streamed writes (issue 17 stage C): the value of a SET or HSET over CHUNK_THRESHOLD is written
 * to the chunk file while it arrives, and the key is switched to it by one small transaction at
 * the end. The invariants that are not timings: the server holds a few chunks of it, not the
 * value (its query buffer, its RSS); SET's options behave as in redis-server; a value nobody takes
 * (NX/XX failing, a syntax error, DISCARD, a client gone, a server killed) leaves the old value and
 * no chunks behind; values of hundreds of MiB round-trip byte for byte through three clients.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { RawClient, resp } from '../helpers/raw.js';
import { runScript, type Cmd } from '../helpers/compare.js';
import { spawnOurs, startOurs, startRedis, tempDir, type TestServer } from '../helpers/servers.js';
import { procMemory } from '../helpers/proc.js';
import { CHUNK_BYTES, chunkCount } from '../../src/storage/chunks.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

function totals(s: TestServer): { blobs: number; chunks: number } {
  const t = { blobs: 0, chunks: 0 };
  for (const c of s.store.chunkStats()) {
    t.blobs += c.blobs;
    t.chunks += c.chunks;
  }
  return t;
}

/** Waits (bounded) until `f` holds; returns whether it did. */
async function eventually(f: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (!f()) {
    if (Date.now() > until) return false;
    await sleep(20);
  }
  return true;
}

/** Reclaims what can be reclaimed until `f` holds (bounded); returns whether it did. */
async function reclaimedUntil(s: TestServer, f: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    await s.store.reclaimAll(timeoutMs);
    if (f()) return true;
    if (Date.now() > until) return false;
    await sleep(50);
  }
}

/** A socket that has sent the header of `SET key <size bytes>` and nothing of the value yet. */
async function startUpload(port: number, key: string, size: number, cmd = 'SET'): Promise<Socket> {
  const sock = connect(port, '127.0.0.1');
  sock.on('error', () => {});
  await new Promise((res) => sock.once('connect', res));
  sock.write(`*3\r\n$${cmd.length}\r\n${cmd}\r\n$${key.length}\r\n${key}\r\n$${size}\r\n`);
  return sock;
}

/** The chunk file's blob and chunk counts, read from outside the server. */
function fileCounts(path: string): { blobs: number; chunks: number } {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return {
      blobs: Number(db.prepare('SELECT count(*) FROM blob_index').pluck().get()),
      chunks: Number(db.prepare('SELECT count(*) FROM chunks').pluck().get()),
    };
  } finally {
    db.close();
  }
}

describe('streamed writes (in process)', () => {
  it('a big SET is in the chunk file before its last byte arrives, and the query buffer stays small', async () => {
    const s = await startOurs({ num_shards: 1 });
    const r = new Redis({ port: s.port, host: '127.0.0.1' });
    try {
      const value = randomBytes(12 * MiB + 5);
      const sock = await startUpload(s.port, 'k', value.length);
      sock.write(value.subarray(0, 8 * MiB));
      // Everything but the last partial chunk can be written before the rest arrives.
      assert.ok(await eventually(() => totals(s).chunks >= 8 * MiB / CHUNK_BYTES - 4), `chunks written so far: ${totals(s).chunks}`);
      const list = (await r.call('CLIENT', 'LIST')) as string;
      const qbuf = Number(/qbuf=(\d+)/.exec(list.split('\n').find((l) => !l.includes('cmd=client'))!)![1]);
      assert.ok(qbuf < 1 * MiB, `qbuf=${qbuf} while 8 MiB of the value were sent`);
      assert.equal(await r.exists('k'), 0, 'not visible before it is complete');
      const reply = new Promise<string>((res) => sock.once('data', (d) => res(d.toString())));
      sock.write(Buffer.concat([value.subarray(8 * MiB), Buffer.from('\r\n')]));
      assert.equal(await reply, '+OK\r\n');
      sock.destroy();
      assert.equal(sha((await r.getBuffer('k'))!), sha(value));
      await s.store.drain();
      assert.deepEqual(totals(s), { blobs: 1, chunks: chunkCount(value.length) });
    } finally {
      r.disconnect();
      await s.close();
    }
  });

  it('SET, SETEX, PSETEX, SETNX, HSET, HMSET, HSETNX of big values, with every SET option: replies equal redis-server', async () => {
    const ours = await startOurs({ num_shards: 2 });
    const redis = await startRedis();
    try {
      const v = [0, 1, 2, 3, 4, 5].map((i) => Buffer.concat([Buffer.from(`value ${i} `), randomBytes(2 * MiB + i * 1000)]));
      const script: Cmd[] = [
        ['SET', 'k', v[0]],
        ['SET', 'k', v[1], 'NX'],
        ['SET', 'k', v[1], 'XX', 'GET'],
        ['STRLEN', 'k'],
        ['SET', 'absent', v[2], 'XX'],
        ['EXISTS', 'absent'],
        ['SET', 'absent', v[2], 'XX', 'GET'],
        ['SET', 'k', v[2], 'EX', '1000'],
        ['TTL', 'k'],
        ['SET', 'k', v[3], 'KEEPTTL'],
        ['TTL', 'k'],
        ['SET', 'k', v[4], 'GET', 'KEEPTTL', 'XX'],
        ['TTL', 'k'],
        ['GET', 'k'],
        ['SET', 'k', v[5]],
        ['TTL', 'k'],
        ['SET', 'k', v[0], 'PX', '100000', 'EX', '5'],
        ['SET', 'k', v[0], 'NX', 'XX'],
        ['SET', 'k', v[0], 'EX', '0'],
        ['SET', 'k', v[0], 'EX', 'soon'],
        ['SET', 'k', v[0], 'BOGUS'],
        ['GET', 'k'],
        ['SET', 'n', v[1], 'NX', 'GET'],
        ['SET', 'n', v[2], 'NX', 'GET'],
        ['GETRANGE', 'n', '0', '9'],
        ['SET', 'at', v[3], 'PXAT', String(Date.now() + 3_600_000)],
        ['SET', 'at', v[3], 'EXAT', '1'],
        ['EXISTS', 'at'],
        ['SETEX', 'ex', '1000', v[1]],
        ['TTL', 'ex'],
        ['SETEX', 'ex', '-5', v[1]],
        ['PSETEX', 'px', '1000000', v[2]],
        ['TTL', 'px'],
        ['SETNX', 'px', v[3]],
        ['SETNX', 'nx', v[3]],
        ['STRLEN', 'nx'],
        ['HSET', 'h', 'a', v[0], 'b', 'small', 'c', v[1]],
        ['HSET', 'h', 'a', v[2]],
        ['HGET', 'h', 'a'],
        ['HSTRLEN', 'h', 'c'],
        ['HSET', 'h', 'odd', v[1], 'dangling'],
        ['HEXISTS', 'h', 'odd'],
        ['HMSET', 'h', 'd', v[3]],
        ['HSETNX', 'h', 'd', v[4]],
        ['HSETNX', 'h', 'e', v[4]],
        ['HGET', 'h', 'd'],
        ['HLEN', 'h'],
        ['MULTI'],
        ['SET', 'm', v[0]],
        ['SET', 'm', v[1], 'XX', 'GET'],
        ['SET', 'm', v[2], 'NX'],
        ['EXEC'],
        ['GET', 'm'],
        ['MULTI'],
        ['SET', 'd', v[3]],
        ['DISCARD'],
        ['EXISTS', 'd'],
      ];
      const expected = await runScript(redis.port, script);
      const actual = await runScript(ours.port, script);
      for (let i = 0; i < script.length; i++) {
        assert.equal(actual[i], expected[i], `reply to ${script[i].map((a) => (a.length > 64 ? `<${a.length} bytes>` : String(a))).join(' ')}`);
      }
      // Every value that was refused (NX/XX, syntax errors, DISCARD) or overwritten leaves nothing.
      const live = ['k', 'n', 'ex', 'px', 'nx', 'm'].length + 4; // h: a, c, d, e
      assert.ok(await reclaimedUntil(ours, () => totals(ours).blobs === live), `blobs ${totals(ours).blobs}, live chunked values ${live}`);
    } finally {
      await redis.stop();
      await ours.close();
    }
  });

  it('a client gone mid-value, or inside MULTI, leaves the old value and no chunks', async () => {
    const s = await startOurs({ num_shards: 1 });
    const r = new Redis({ port: s.port, host: '127.0.0.1' });
    try {
      const old = randomBytes(3 * MiB);
      await r.set('k', old);
      await s.store.drain();
      const before = totals(s);
      // Gone in the middle of the value, once some of its chunks are written.
      const sock = await startUpload(s.port, 'k', 64 * MiB);
      sock.write(randomBytes(6 * MiB));
      assert.ok(await eventually(() => totals(s).chunks > before.chunks + 4));
      sock.destroy();
      // Gone after a complete value was queued in MULTI.
      const tx = await RawClient.connect(s.port);
      tx.write(resp('MULTI'));
      assert.equal(await tx.reply(), '+OK\r\n');
      tx.write(resp('SET', 'k', randomBytes(5 * MiB)));
      assert.equal(await tx.reply(), '+QUEUED\r\n');
      assert.ok(totals(s).blobs > before.blobs, 'the queued value is staged');
      tx.destroy();
      // Gone with a bad end of bulk (protocol error).
      const bad = await RawClient.connect(s.port);
      const big = randomBytes(3 * MiB);
      bad.write(Buffer.concat([Buffer.from(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${big.length}\r\n`), big, Buffer.from('XX')]));
      assert.match(await bad.untilClosed(), /^-ERR Protocol error: expected '\\r\\n' after bulk data\r\n$/);
      assert.ok(await reclaimedUntil(s, () => totals(s).blobs === before.blobs && totals(s).chunks === before.chunks), `after: ${JSON.stringify(totals(s))}, before: ${JSON.stringify(before)}`);
      assert.equal(sha((await r.getBuffer('k'))!), sha(old));
    } finally {
      r.disconnect();
      await s.close();
    }
  });

  it('pipelined big SETs and HSETs between small commands: replies in order, every value whole', async () => {
    const s = await startOurs({ num_shards: 3 });
    const r = new Redis({ port: s.port, host: '127.0.0.1' });
    try {
      const vs = [0, 1, 2, 3].map((i) => randomBytes(3 * MiB + i * 4097));
      const out = await r
        .pipeline()
        .set('a', vs[0])
        .get('nope')
        .set('b', vs[1], 'EX', '100')
        .hset('h', 'f', vs[2], 'g', vs[3])
        .strlen('a')
        .set('a', vs[3], 'NX')
        .ttl('b')
        .ping()
        .exec();
      assert.deepEqual(out!.map(([err, v]) => [err, v]), [[null, 'OK'], [null, null], [null, 'OK'], [null, 2], [null, vs[0].length], [null, null], [null, 100], [null, 'PONG']]);
      assert.equal(sha((await r.getBuffer('a'))!), sha(vs[0]));
      assert.equal(sha((await r.getBuffer('b'))!), sha(vs[1]));
      assert.equal(sha((await r.hgetBuffer('h', 'f'))!), sha(vs[2]));
      assert.equal(sha((await r.hgetBuffer('h', 'g'))!), sha(vs[3]));
      assert.ok(await reclaimedUntil(s, () => totals(s).blobs === 4), `blobs ${totals(s).blobs}`);
    } finally {
      r.disconnect();
      await s.close();
    }
  });

  it('a chunk write that fails answers an error, keeps the old value and the connection, and leaves no chunks', async () => {
    const s = await startOurs({ num_shards: 1 });
    const r = new Redis({ port: s.port, host: '127.0.0.1' });
    try {
      const old = randomBytes(2 * MiB);
      await r.set('k', old);
      await s.store.drain();
      const before = totals(s);
      const file = s.store.chunkFiles[0];
      // Staged chunks are written through putChunksAsync (on the chunk I/O thread when it runs).
      const put = file.putChunksAsync.bind(file);
      let calls = 0;
      file.putChunksAsync = async (id, seq, chunks, indexSize) => {
        if (++calls === 3) throw new Error('database or disk is full');
        return put(id, seq, chunks, indexSize);
      };
      try {
        // The reply names the chunk file, as a shard's SQLite errors name the shard file.
        await assert.rejects(r.set('k', randomBytes(6 * MiB)), /^ReplyError: ERR shard-0\.chunks\.db: database or disk is full$/);
      } finally {
        file.putChunksAsync = put;
      }
      assert.equal(calls > 3, false, 'the upload stops at the failing write');
      assert.equal(await r.ping(), 'PONG');
      assert.equal(sha((await r.getBuffer('k'))!), sha(old));
      assert.ok(await reclaimedUntil(s, () => totals(s).blobs === before.blobs && totals(s).chunks === before.chunks), JSON.stringify(totals(s)));
    } finally {
      r.disconnect();
      await s.close();
    }
  });

  it('per-chunk compression of a streamed value, off the event loop', async () => {
    const s = await startOurs({ num_shards: 1, storage_compression: { enabled: true, algorithm: 'zstd', level: 3 } });
    const r = new Redis({ port: s.port, host: '127.0.0.1' });
    try {
      const text = Buffer.from('compressible text, chunk after chunk '.repeat(300_000));
      assert.equal(await r.set('t', text), 'OK');
      await s.store.drain();
      const t = s.store.byteTotals();
      assert.equal(t.logical, text.length);
      assert.ok(t.stored > 0 && t.stored < text.length / 10, `stored ${t.stored} of ${text.length}`);
      assert.equal(sha((await r.getBuffer('t'))!), sha(text));
      assert.ok((await r.getrangeBuffer('t', 5_000_000, 5_000_099)).equals(text.subarray(5_000_000, 5_000_100)));
    } finally {
      r.disconnect();
      await s.close();
    }
  });
});

describe('streamed writes (server process)', () => {
  it('a server killed with SIGKILL mid-upload restarts with the old value and no orphan chunks', async () => {
    const data = join(tempDir('blobasaur-stream-kill-'), 'data');
    const args = ['--data-dir', data, '--shards', '1'];
    const chunkFile = join(data, 'shard-0.chunks.db');
    const first = await spawnOurs(args);
    const r = new Redis({ port: first.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    r.on('error', () => {});
    const old = randomBytes(2 * MiB + 1);
    await r.set('k', old);
    r.disconnect();
    const before = fileCounts(chunkFile);
    const sock = await startUpload(first.port, 'k', 100 * MiB);
    sock.write(randomBytes(10 * MiB));
    const staged = await eventually(() => fileCounts(chunkFile).chunks >= before.chunks + 8, 20_000);
    first.proc.kill('SIGKILL');
    await first.exited;
    sock.destroy();
    assert.ok(staged, 'chunks of the upload were written before the kill');
    assert.equal(fileCounts(chunkFile).blobs, before.blobs + 1);

    const second = await spawnOurs(args);
    const r2 = new Redis({ port: second.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    try {
      assert.equal(sha((await r2.getBuffer('k'))!), sha(old));
      assert.ok(await eventually(() => fileCounts(chunkFile).blobs === before.blobs && fileCounts(chunkFile).chunks === before.chunks));
    } finally {
      r2.disconnect();
      second.proc.kill('SIGTERM');
      await second.exited;
    }
    assert.deepEqual(fileCounts(chunkFile), { blobs: 1, chunks: chunkCount(old.length) });
  });

  it('the server RSS grows by at most 64 MiB while a 320 MiB value is SET (VmHWM)', async () => {
    const child = await spawnOurs(['--data-dir', join(tempDir('blobasaur-stream-rss-'), 'data'), '--shards', '2']);
    const pid = child.proc.pid!;
    const r = new Redis({ port: child.port, host: '127.0.0.1' });
    try {
      // Warm up the paths a streamed SET uses, so the baseline is the server's working size.
      await r.set('warm', randomBytes(4 * MiB));
      await r.del('warm');
      await sleep(200);
      const base = procMemory(pid).peak;
      const size = 320 * MiB;
      const sock = await startUpload(child.port, 'big', size);
      const reply = new Promise<string>((res) => sock.once('data', (d) => res(d.toString())));
      // Sent in 8 MiB pieces of one buffer, so this process does not hold 320 MiB either.
      const piece = randomBytes(8 * MiB);
      for (let sent = 0; sent < size; sent += piece.length) {
        if (!sock.write(piece)) await new Promise((res) => sock.once('drain', res));
      }
      sock.write('\r\n');
      assert.equal(await reply, '+OK\r\n');
      sock.destroy();
      const growth = procMemory(pid).peak - base;
      assert.ok(growth <= 64 * MiB, `VmHWM grew by ${(growth / MiB).toFixed(1)} MiB`);
      assert.equal(await r.strlen('big'), size);
      assert.ok((await r.getrangeBuffer('big', size - 8 * MiB, size - 8 * MiB + 99)).equals(piece.subarray(0, 100)));
    } finally {
      r.disconnect();
      child.proc.kill('SIGTERM');
      await child.exited;
    }
  });

  it('values of a few hundred MiB round-trip byte for byte through redis-cli -x, ioredis and redis-py', async () => {
    const child = await spawnOurs(['--data-dir', join(tempDir('blobasaur-stream-clients-'), 'data'), '--shards', '2']);
    const r = new Redis({ port: child.port, host: '127.0.0.1' });
    try {
      const size = 200 * MiB + 17;
      const value = randomBytes(size);
      const digest = sha(value);
      assert.equal(await r.set('io', value), 'OK');
      assert.equal(sha((await r.getBuffer('io'))!), digest, 'ioredis');
      await r.del('io');

      const dir = tempDir('blobasaur-stream-files-');
      const file = join(dir, 'value.bin');
      writeFileSync(file, value);
      // redis-cli -x reads the last argument from stdin; --raw GET writes it back plus a newline.
      assert.equal(execFileSync('redis-cli', ['-p', String(child.port), '-x', 'SET', 'cli'], { input: value, maxBuffer: MiB }).toString(), 'OK\n');
      const out = spawnSync('redis-cli', ['-p', String(child.port), '--raw', 'GET', 'cli'], { maxBuffer: size + MiB });
      assert.equal(out.stdout.length, size + 1);
      assert.equal(sha(out.stdout.subarray(0, size)), digest, 'redis-cli');
      await r.del('cli');

      const py = spawnSync(
        '/usr/bin/python3',
        ['-c', `import hashlib, redis, sys\nr = redis.Redis(port=${child.port})\nr.set('py', open(sys.argv[1], 'rb').read())\nprint(hashlib.sha256(r.get('py')).hexdigest())`, file],
        { encoding: 'utf8', timeout: 120_000 },
      );
      assert.equal(py.stdout.trim(), digest, `redis-py: ${py.stderr.slice(0, 300)}`);
    } finally {
      r.disconnect();
      child.proc.kill('SIGTERM');
      await child.exited;
    }
  });
});
