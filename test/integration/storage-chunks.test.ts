/**
 * Values above CHUNK_THRESHOLD live in the shard's chunk file (issue 17, stage B): the invariants
 * that are not timings. Range reads and appends touch only the chunks they need; a streamed GET
 * sees the value it started with whatever overwrites and deletes come meanwhile; dead blobs are
 * reclaimed; a server killed with SIGKILL while staging a value, or a client gone mid-value,
 * leaves the old value and no chunks nobody references.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { Harness } from '../helpers/harness.js';
import { spawnOurs, startOurs, tempDir } from '../helpers/servers.js';
import { CHUNK_BYTES, CHUNK_THRESHOLD } from '../../src/storage/chunks.js';
import { WHOLE_VALUE_MAX_BYTES } from '../../src/storage/keyspace.js';
import { ErrorReply } from '../../src/protocol/reply.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Chunks read and written over every shard's chunk file. */
function touched(h: Harness): { read: number; written: number } {
  let read = 0;
  let written = 0;
  for (const c of h.store.chunkFiles) {
    read += c.chunksRead;
    written += c.chunksWritten;
  }
  return { read, written };
}

function totals(h: Harness): { blobs: number; chunks: number; dead: number } {
  const t = { blobs: 0, chunks: 0, dead: 0 };
  for (const s of h.store.chunkStats()) {
    t.blobs += s.blobs;
    t.chunks += s.chunks;
    t.dead += s.dead;
  }
  return t;
}

describe('chunked values in the keyspace (in process)', () => {
  it('a value over the threshold is stored in chunks; 1 MiB stays inline', async () => {
    const h = Harness.open();
    try {
      const inline = randomBytes(CHUNK_THRESHOLD);
      assert.equal(await h.resp('SET', 'inline', inline), '+OK\r\n');
      assert.deepEqual(totals(h), { blobs: 0, chunks: 0, dead: 0 });
      const big = randomBytes(3 * MiB + 5);
      await h.run('SET', 'big', big);
      await h.store.drain();
      assert.deepEqual(totals(h), { blobs: 1, chunks: 13, dead: 0 });
      assert.ok((await h.run('GET', 'big') as Buffer).equals(big));
      assert.equal(await h.run('STRLEN', 'big'), big.length);
    } finally {
      await h.close();
    }
  });

  it('GETRANGE reads only the chunks that cover the range; APPEND writes only the last chunk and the row', async () => {
    const h = Harness.open();
    try {
      const big = randomBytes(8 * MiB + 100);
      await h.run('SET', 'big', big);
      await h.store.drain();
      let before = touched(h);
      assert.ok((await h.run('GETRANGE', 'big', 1000, 1015) as Buffer).equals(big.subarray(1000, 1016)));
      assert.deepEqual(touched(h), { read: before.read + 1, written: before.written });
      before = touched(h);
      // Straddling a chunk boundary: two chunks.
      assert.ok((await h.run('GETRANGE', 'big', CHUNK_BYTES - 8, CHUNK_BYTES + 7) as Buffer).equals(big.subarray(CHUNK_BYTES - 8, CHUNK_BYTES + 8)));
      assert.equal(touched(h).read, before.read + 2);
      before = touched(h);
      assert.ok((await h.run('GETRANGE', 'big', -16, -1) as Buffer).equals(big.subarray(big.length - 16)));
      assert.equal(touched(h).read, before.read + 1);

      before = touched(h);
      assert.equal(await h.run('APPEND', 'big', 'abc'), big.length + 3);
      assert.deepEqual(touched(h), { read: before.read + 1, written: before.written + 1 });
      before = touched(h);
      assert.equal(await h.run('SETRANGE', 'big', 5 * CHUNK_BYTES + 10, 'XYZ'), big.length + 3);
      assert.deepEqual(touched(h), { read: before.read + 1, written: before.written + 1 });

      const expected = Buffer.concat([big, Buffer.from('abc')]);
      expected.write('XYZ', 5 * CHUNK_BYTES + 10, 'latin1');
      assert.equal(sha(await h.run('GET', 'big') as Buffer), sha(expected));
      // The old blobs share all but one chunk with the new one: reclaiming them frees only those.
      await h.store.reclaimAll();
      assert.deepEqual(totals(h), { blobs: 1, chunks: 33, dead: 0 });
    } finally {
      await h.close();
    }
  });

  it('DEL, overwrite and FLUSHALL leave dead blobs that are reclaimed; COPY shares a blob until both keys are gone', async () => {
    const h = Harness.open({ numShards: 1 });
    try {
      const a = randomBytes(2 * MiB);
      await h.run('SET', 'a', a);
      assert.equal(await h.run('COPY', 'a', 'b'), 1);
      await h.store.reclaimAll();
      assert.deepEqual(totals(h), { blobs: 1, chunks: 8, dead: 0 });
      assert.equal(await h.run('DEL', 'a'), 1);
      await h.store.reclaimAll();
      assert.deepEqual(totals(h), { blobs: 1, chunks: 8, dead: 0 });
      assert.ok((await h.run('GET', 'b') as Buffer).equals(a));
      await h.run('SET', 'b', randomBytes(3 * MiB));
      await h.store.reclaimAll();
      assert.deepEqual(totals(h), { blobs: 1, chunks: 12, dead: 0 });
      await h.run('SET', 'c', randomBytes(2 * MiB));
      await h.run('FLUSHALL');
      await h.store.reclaimAll();
      assert.deepEqual(totals(h), { blobs: 0, chunks: 0, dead: 0 });
    } finally {
      await h.close();
    }
  });

  it('RENAME moves the row on one shard and copies the chunks across shards; the source is reclaimed', async () => {
    const h = Harness.open({ numShards: 4 });
    try {
      const v = randomBytes(2 * MiB + 7);
      await h.run('SET', 'src', v);
      const srcShard = h.store.shardOf(Buffer.from('src'));
      const other = ['d0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7'].find((k) => h.store.shardOf(Buffer.from(k)) !== srcShard)!;
      const same = ['s0', 's1', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9'].find((k) => h.store.shardOf(Buffer.from(k)) === srcShard)!;
      const before = touched(h);
      assert.equal(await h.resp('RENAME', 'src', same), '+OK\r\n');
      // Same shard: the row moves, no chunk is read or written.
      assert.deepEqual(touched(h), before);
      assert.ok((await h.run('GET', same) as Buffer).equals(v));
      await h.store.reclaimAll();
      assert.deepEqual(totals(h), { blobs: 1, chunks: 9, dead: 0 });
      assert.equal(await h.resp('RENAME', same, other), '+OK\r\n');
      assert.ok((await h.run('GET', other) as Buffer).equals(v));
      assert.equal(await h.run('EXISTS', same), 0);
      await h.store.reclaimAll();
      assert.deepEqual(totals(h), { blobs: 1, chunks: 9, dead: 0 });
      assert.equal(h.store.chunkStats()[h.store.shardOf(Buffer.from(other))].blobs, 1);
    } finally {
      await h.close();
    }
  });

  it('per-chunk compression; INFO-style byte totals count the chunks as stored', async () => {
    const h = Harness.open({ compression: { algorithm: 'zstd', level: 3 } });
    try {
      const text = Buffer.from('compressible text '.repeat(200_000));
      await h.run('SET', 'text', text);
      await h.store.drain();
      const totalsNow = h.store.byteTotals();
      assert.equal(totalsNow.logical, text.length);
      assert.ok(totalsNow.stored > 0 && totalsNow.stored < text.length / 10, `stored ${totalsNow.stored}`);
      assert.ok((await h.run('GET', 'text') as Buffer).equals(text));
      assert.ok((await h.run('GETRANGE', 'text', 3_000_000, 3_000_017) as Buffer).equals(text.subarray(3_000_000, 3_000_018)));
    } finally {
      await h.close();
    }
  });

  it(`commands that need a whole value refuse one over ${WHOLE_VALUE_MAX_BYTES / MiB} MiB with a clear error; GET and APPEND still work`, async () => {
    const h = Harness.open({ numShards: 1 });
    try {
      const big = Buffer.alloc(WHOLE_VALUE_MAX_BYTES + 1, 0x31);
      await h.run('SET', 'big', big);
      const incr = await h.run('INCR', 'big');
      assert.ok(incr instanceof ErrorReply);
      assert.match(incr.message, /^ERR value of key 'big' is 67108865 bytes; commands that need a whole value take values up to 67108864 bytes/);
      assert.ok((await h.run('GETSET', 'big', 'x')) instanceof ErrorReply);
      assert.equal(await h.run('APPEND', 'big', 'z'), big.length + 1);
      assert.equal(await h.run('STRLEN', 'big'), big.length + 1);
      assert.ok((await h.run('GETRANGE', 'big', -2, -1) as Buffer).equals(Buffer.from('1z')));
    } finally {
      await h.close();
    }
  });
});

/** Reads one RESP bulk reply of `length` bytes from a raw socket, pausing after the first piece. */
function rawGet(port: number, key: string): { sock: Socket; firstBytes: Promise<void>; done: Promise<Buffer> } {
  const sock = connect(port, '127.0.0.1');
  const parts: Buffer[] = [];
  let got = 0;
  let resolveFirst!: () => void;
  const firstBytes = new Promise<void>((r) => (resolveFirst = r));
  const done = new Promise<Buffer>((resolve, reject) => {
    sock.on('data', (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got > 0) resolveFirst();
      const all = Buffer.concat(parts);
      const nl = all.indexOf('\r\n');
      if (nl < 0) return;
      const len = Number(all.subarray(1, nl).toString());
      if (all.length >= nl + 2 + len + 2) resolve(all.subarray(nl + 2, nl + 2 + len));
    });
    sock.on('error', reject);
  });
  sock.write(`*2\r\n$3\r\nGET\r\n$${key.length}\r\n${key}\r\n`);
  return { sock, firstBytes, done };
}

describe('chunked values through a server', () => {
  it('a streamed GET returns the value it started with, while another client overwrites and deletes the key', async () => {
    const server = await startOurs({ num_shards: 2 });
    const r = new Redis({ port: server.port, host: '127.0.0.1' });
    try {
      const old = randomBytes(24 * MiB);
      await r.set('v', old);
      const reader = rawGet(server.port, 'v');
      await reader.firstBytes;
      // The reader stops reading: the server's stream waits on the socket's drain.
      reader.sock.pause();
      await r.set('v', randomBytes(24 * MiB));
      assert.equal(await r.del('v'), 1);
      await r.set('v2', randomBytes(4 * MiB));
      // Give the reclaimer (every 100 ms) time to try the old blob.
      await new Promise((res) => setTimeout(res, 400));
      reader.sock.resume();
      const got = await reader.done;
      reader.sock.destroy();
      assert.equal(got.length, old.length);
      assert.equal(sha(got), sha(old));
      assert.equal(await r.get('v'), null);
    } finally {
      r.disconnect();
      await server.close();
    }
  });

  it('replies after a streamed GET stay in order; STRLEN and GETRANGE on a big value; a pipeline through ioredis', async () => {
    const server = await startOurs();
    const r = new Redis({ port: server.port, host: '127.0.0.1' });
    try {
      const v = randomBytes(6 * MiB + 3);
      await r.set('big', v);
      const out = await r.pipeline().get('nope').getBuffer('big').strlen('big').getrangeBuffer('big', 5, 9).getBuffer('big').ping().exec();
      assert.deepEqual(out!.map(([e]) => e), [null, null, null, null, null, null]);
      assert.equal(out![0][1], null);
      assert.ok((out![1][1] as Buffer).equals(v));
      assert.equal(out![2][1], v.length);
      assert.ok((out![3][1] as Buffer).equals(v.subarray(5, 10)));
      assert.ok((out![4][1] as Buffer).equals(v));
      assert.equal(out![5][1], 'PONG');
      // Inside MULTI the value comes whole, in EXEC's array.
      const tx = await r.multi().getBuffer('big').strlen('big').exec();
      assert.ok((tx![0][1] as Buffer).equals(v));
      assert.equal(tx![1][1], v.length);
    } finally {
      r.disconnect();
      await server.close();
    }
  });

  it('a client gone mid-value leaves the old value and no chunks', async () => {
    const server = await startOurs({ num_shards: 1 });
    const r = new Redis({ port: server.port, host: '127.0.0.1' });
    try {
      const old = randomBytes(2 * MiB);
      await r.set('k', old);
      const sock = connect(server.port, '127.0.0.1');
      await new Promise((res) => sock.once('connect', res));
      sock.write(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${16 * MiB}\r\n`);
      sock.write(randomBytes(5 * MiB));
      await new Promise((res) => setTimeout(res, 100));
      sock.destroy();
      await new Promise((res) => setTimeout(res, 300));
      assert.ok((await r.getBuffer('k'))!.equals(old));
    } finally {
      r.disconnect();
      await server.close();
    }
    const chunks = new Database(join(server.dataDir, 'shard-0.chunks.db'), { readonly: true });
    try {
      assert.equal(chunks.prepare('SELECT count(*) FROM blob_index').pluck().get(), 1);
    } finally {
      chunks.close();
    }
  });

  it('a server killed with SIGKILL while it stages a value restarts with the old value and reclaims the orphan chunks', async () => {
    const data = join(tempDir('blobasaur-chunks-kill-'), 'data');
    const args = ['--data-dir', data, '--shards', '1'];
    const first = await spawnOurs(args);
    const r = new Redis({ port: first.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    const old = randomBytes(2 * MiB);
    await r.set('k', old);
    const chunkFile = join(data, 'shard-0.chunks.db');
    assert.ok(existsSync(chunkFile));
    const blobs = (): number => {
      const db = new Database(chunkFile, { readonly: true, fileMustExist: true });
      try {
        return Number(db.prepare('SELECT count(*) FROM blob_index').pluck().get());
      } finally {
        db.close();
      }
    };
    // 96 MiB take ~0.3 s to stage: kill as soon as its blob appears in the chunk file.
    void r.set('k', randomBytes(96 * MiB)).catch(() => {});
    const deadline = Date.now() + 20_000;
    while (blobs() < 2 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 2));
    first.proc.kill('SIGKILL');
    await first.exited;
    r.disconnect();
    assert.equal(blobs(), 2, 'the new value was being staged when the server was killed');

    const second = await spawnOurs(args);
    const r2 = new Redis({ port: second.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    try {
      const got = await r2.getBuffer('k');
      assert.ok(got!.equals(old), 'the old value is intact');
      const until = Date.now() + 10_000;
      while (blobs() > 1 && Date.now() < until) await new Promise((res) => setTimeout(res, 50));
      assert.equal(blobs(), 1, 'the orphan blob is reclaimed');
    } finally {
      r2.disconnect();
      second.proc.kill('SIGTERM');
      await second.exited;
    }
    const db = new Database(chunkFile, { readonly: true });
    try {
      // Every chunk belongs to the one live blob.
      assert.equal(db.prepare('SELECT count(*) FROM chunks').pluck().get(), 8);
      assert.equal(db.prepare('SELECT count(*) FROM blob_chunks').pluck().get(), 8);
    } finally {
      db.close();
    }
  });
});
