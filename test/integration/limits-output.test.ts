/**
 * Output limits for clients that do not read their replies. A client pipelining GETs of a big value
 * is paused at the soft limit (its commands stop running, its socket stops being read) while other
 * clients keep being served, and loses nothing once it reads again. Replies produced off the event
 * loop (decompressed values) can outrun the pause; a client past the hard limit that then reads
 * nothing for half a second is disconnected, one that keeps reading is not. A single reply bigger
 * than the hard limit is still delivered.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { RawClient, replyEnd, resp } from '../helpers/raw.js';
import { startOurs, type TestServer } from '../helpers/servers.js';

const MiB = 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A client that writes and does not read until told to. */
class Flooder {
  readonly socket: Socket;
  private chunks: Buffer[] = [];
  closed = false;

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('error', () => {});
    this.socket.on('close', () => (this.closed = true));
    this.socket.on('data', (d: Buffer) => this.chunks.push(d));
    this.socket.pause();
  }

  ready(): Promise<void> {
    return new Promise((resolve) => this.socket.once('connect', () => resolve()));
  }

  /** Reads until `n` replies or the close, whichever comes first; returns the complete replies. */
  async drain(n: number, timeoutMs = 15_000): Promise<Buffer[]> {
    this.socket.resume();
    const replies: Buffer[] = [];
    let pending: Buffer[] = [];
    let pendingLen = 0;
    // Bytes needed before the next reply can be complete: big bulks are joined once, not per chunk.
    let need = 1;
    const deadline = Date.now() + timeoutMs;
    while (replies.length < n && Date.now() < deadline) {
      if (this.chunks.length > 0) {
        for (const c of this.chunks) pendingLen += c.length;
        pending.push(...this.chunks);
        this.chunks = [];
      }
      if (pendingLen >= need) {
        let buf = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingLen);
        let end: number;
        while (replies.length < n && (end = replyEnd(buf, 0)) > 0) {
          replies.push(buf.subarray(0, end));
          buf = buf.subarray(end);
        }
        pending = buf.length > 0 ? [buf] : [];
        pendingLen = buf.length;
        const header = /^\$(\d+)\r\n/.exec(buf.subarray(0, 32).toString('latin1'));
        need = header !== null ? header[0].length + Number(header[1]) + 2 : pendingLen + 1;
      } else if (this.closed && this.chunks.length === 0) {
        break;
      } else {
        await sleep(5);
      }
    }
    return replies;
  }
}

/** The INFO field as a number. */
async function infoField(c: RawClient, section: string, field: string): Promise<number> {
  c.write(resp('INFO', section));
  const m = new RegExp(`${field}:(\\d+)`).exec(await c.reply());
  assert.ok(m, `no ${field} in INFO ${section}`);
  return Number(m[1]);
}

/** CLIENT LIST line of client `id`, or undefined when it is gone. */
async function clientLine(c: RawClient, id: number): Promise<string | undefined> {
  c.write(resp('CLIENT', 'LIST'));
  return (await c.reply()).split('\n').find((l) => l.includes(`id=${id} `));
}

function value(size: number, seed: number): Buffer {
  const v = Buffer.alloc(size);
  for (let i = 0; i < size; i++) v[i] = (i * 31 + seed) & 0xff;
  return v;
}

describe('a client pipelining GETs of a big value without reading', () => {
  const SOFT = 4 * MiB;
  const HARD = 8 * MiB;
  const GETS = 150;
  let ours: TestServer;
  let bystander: RawClient;
  const big = value(MiB, 7);
  before(async () => {
    ours = await startOurs({ client_output_buffer_limit_soft: SOFT, client_output_buffer_limit_hard: HARD });
    bystander = await RawClient.connect(ours.port);
    bystander.write(resp('SET', 'big', big));
    assert.equal(await bystander.reply(), '+OK\r\n');
  });
  after(async () => {
    bystander.destroy();
    await ours.close();
  });

  it('is paused at the soft limit, others are served meanwhile, and it loses nothing when it reads', async () => {
    const flooder = new Flooder(ours.port);
    await flooder.ready();
    flooder.socket.write(resp('CLIENT', 'ID'));
    const [idReply] = await flooder.drain(1);
    flooder.socket.pause();
    const id = Number(/^:(\d+)/.exec(idReply.toString())![1]);
    const before = await infoField(bystander, 'stats', 'total_commands_processed');

    const gets: Buffer[] = [];
    for (let i = 0; i < GETS; i++) gets.push(resp('GET', 'big'));
    flooder.socket.write(Buffer.concat(gets));
    await sleep(500);

    // Everyone else is served while the flooder is stuck, and quickly.
    let slowest = 0;
    for (let i = 0; i < 50; i++) {
      const t = performance.now();
      bystander.write(resp('SET', `b${i}`, String(i)));
      bystander.write(resp('GET', `b${i}`));
      assert.deepEqual(await bystander.replies(2), ['+OK\r\n', `$${String(i).length}\r\n${i}\r\n`]);
      slowest = Math.max(slowest, performance.now() - t);
    }
    assert.ok(slowest < 250, `a bystander round trip took ${slowest.toFixed(0)} ms`);

    // The flooder is still connected, its backlog is bounded, and most of its GETs have not run.
    const line = await clientLine(bystander, id);
    assert.ok(line, 'the flooder was disconnected');
    const omem = Number(/omem=(\d+)/.exec(line)![1]);
    assert.ok(omem <= SOFT + MiB + 64 * 1024, `omem=${omem}`);
    const ran = (await infoField(bystander, 'stats', 'total_commands_processed')) - before - 100 - 2; // minus the bystander's
    assert.ok(ran < GETS / 3, `${ran} of ${GETS} GETs ran while the client read nothing`);

    // Once it reads, every reply arrives intact and in order.
    const replies = await flooder.drain(GETS);
    assert.equal(replies.length, GETS);
    const expected = Buffer.concat([Buffer.from(`$${big.length}\r\n`), big, Buffer.from('\r\n')]);
    for (const r of replies) assert.ok(r.equals(expected));
    flooder.socket.destroy();
  });

  it('a single reply bigger than the hard limit is still delivered, also pipelined', async () => {
    const huge = value(HARD + MiB, 3);
    bystander.write(resp('SET', 'huge', huge));
    assert.equal(await bystander.reply(), '+OK\r\n');
    const flooder = new Flooder(ours.port);
    await flooder.ready();
    flooder.socket.write(Buffer.concat([resp('GET', 'huge'), resp('GET', 'huge'), resp('GET', 'huge')]));
    await sleep(300);
    const replies = await flooder.drain(3);
    assert.equal(replies.length, 3);
    for (const r of replies) assert.equal(r.length, huge.length + `$${huge.length}\r\n\r\n`.length);
    assert.ok(replies[2].subarray(replies[2].length - 2 - huge.length, replies[2].length - 2).equals(huge));
    flooder.socket.destroy();
  });
});

describe('replies produced off the event loop faster than the client reads them', () => {
  // lz4 values over 32 KiB are decompressed on the thread pool: each GET's reply arrives later,
  // so several are produced after the pause has already stopped the client's commands.
  const SOFT = MiB;
  const HARD = 2 * MiB;
  let ours: TestServer;
  let bystander: RawClient;
  const compressible = Buffer.alloc(2 * MiB, 'abcdefgh');
  before(async () => {
    ours = await startOurs({
      client_output_buffer_limit_soft: SOFT,
      client_output_buffer_limit_hard: HARD,
      storage_compression: { enabled: true, algorithm: 'lz4' },
      // Every GET must decode off the loop; a cached value would be answered synchronously.
      read_cache_mb: 0,
    });
    bystander = await RawClient.connect(ours.port);
    bystander.write(resp('SET', 'z', compressible));
    assert.equal(await bystander.reply(), '+OK\r\n');
  });
  after(async () => {
    bystander.destroy();
    await ours.close();
  });

  it('a client that reads, even when a burst of replies takes it past the hard limit, gets every reply', async () => {
    const reader = new Flooder(ours.port);
    await reader.ready();
    const n = 40;
    reader.socket.write(Buffer.concat(Array.from({ length: n }, () => resp('GET', 'z'))));
    const replies = await reader.drain(n, 20_000);
    assert.equal(replies.length, n);
    const expected = Buffer.concat([Buffer.from(`$${compressible.length}\r\n`), compressible, Buffer.from('\r\n')]);
    for (const r of replies) assert.ok(r.equals(expected));
    assert.equal(reader.closed, false);
    reader.socket.destroy();
  });

  it('a client that never reads goes past the hard limit and is disconnected; others are served', async () => {
    const flooder = new Flooder(ours.port);
    await flooder.ready();
    flooder.socket.write(resp('CLIENT', 'ID'));
    const [idReply] = await flooder.drain(1);
    flooder.socket.pause();
    const id = Number(/^:(\d+)/.exec(idReply.toString())![1]);
    flooder.socket.write(Buffer.concat(Array.from({ length: 200 }, () => resp('GET', 'z'))));
    const deadline = Date.now() + 5000;
    let line: string | undefined = 'present';
    while (line !== undefined && Date.now() < deadline) {
      await sleep(100);
      line = await clientLine(bystander, id);
    }
    assert.equal(line, undefined, 'the flooder is still connected');
    bystander.write(resp('PING'));
    bystander.write(resp('EXISTS', 'z'));
    const replies = await bystander.replies(2);
    assert.deepEqual(replies, ['+PONG\r\n', ':1\r\n']);
    const got = await flooder.drain(200, 2000);
    assert.ok(got.length < 200, `the flooder got all ${got.length} replies`);
    flooder.socket.destroy();
  });
});
