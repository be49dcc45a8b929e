/**
 * Values of 256 KiB – 1 MiB are received into buffers the server reuses once the write that took
 * one has committed (storage/value-buffers.ts). Reuse must never reach bytes someone still reads:
 * a client that does not read holds GET replies of values read before their commit and inside
 * MULTI while other clients write more values of those sizes (which reuse the buffers), and an ECHO of such a value (an argument no write claims). Its bytes must be exactly
 * redis-server's for the same commands.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Redis } from 'ioredis';
import { startOurs, startRedis } from '../helpers/servers.js';

const SIZE = 700 * 1024;
/** Replies asked for first, to fill the sockets' kernel buffers: what follows waits in the server. */
const FILL = 24;

/** Distinct bytes per seed, so a reply carrying another value's bytes shows. */
function value(seed: number): Buffer {
  const out = Buffer.allocUnsafe(SIZE);
  for (let i = 0; i < SIZE; i++) out[i] = (i * 7 + seed * 131 + (i >> 10)) & 0xff;
  return out;
}

function command(...args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

const bulk = (v: Buffer): Buffer => Buffer.concat([Buffer.from(`$${v.length}\r\n`), v, Buffer.from('\r\n')]);

/** What the client that does not read must get, in order. */
function expectedSlow(): Buffer {
  return Buffer.concat([
    ...Array.from({ length: FILL }, () => bulk(value(0))),
    Buffer.from('+OK\r\n'),
    bulk(value(50)),
    bulk(value(50)),
    Buffer.from('+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n'),
    bulk(value(51)),
    bulk(value(50)),
    bulk(value(60)),
    Buffer.from('+OK\r\n'),
  ]);
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(s));
    s.once('error', reject);
  });
}

function collect(s: net.Socket, bytes: number): Promise<Buffer> {
  const got: Buffer[] = [];
  let n = 0;
  return new Promise((resolve) => {
    s.on('data', (d: Buffer) => {
      got.push(d);
      n += d.length;
      if (n >= bytes) resolve(Buffer.concat(got));
    });
    s.resume();
  });
}

async function waitForName(r: Redis, name: string): Promise<void> {
  for (let polls = 0; !String(await r.client('LIST')).includes(`name=${name} `); polls++) {
    assert.ok(polls < 1000, `the client named ${name} did not get that far`);
    await new Promise((res) => setTimeout(res, 10));
  }
}

/** Runs the scenario against a server on `port`; returns what the client that did not read got. */
async function scenario(port: number): Promise<Buffer> {
  const w = new Redis({ port, host: '127.0.0.1' });
  const slow = await connect(port);
  try {
    // Values of this size committed first: their buffers are idle, ready to be reused.
    for (let i = 0; i < 6; i++) await w.set(`k${i}`, value(i));
    // The client that does not read: a value read straight after its SET (before the commit, with
    // async_write), inside MULTI, and again at the end; its name says when all of it has run.
    slow.pause();
    slow.write(
      Buffer.concat([
        ...Array.from({ length: FILL }, () => command('GET', 'k0')),
        command('SET', 'p', value(50)),
        command('GET', 'p'),
        command('GET', 'p'),
        command('MULTI'),
        command('SET', 'q', value(51)),
        command('GET', 'q'),
        command('EXEC'),
        command('GET', 'p'),
        command('ECHO', value(60)),
        command('CLIENT', 'SETNAME', 'slow-done'),
      ]),
    );
    await waitForName(w, 'slow-done');
    // Everything that could reuse those buffers: more values of the same size, overwrites, deletes.
    for (let i = 0; i < 25; i++) await w.set(`c${i % 5}`, value(100 + i));
    await w.set('p', value(70));
    await w.del('q');
    for (let i = 0; i < 5; i++) assert.equal((await w.getBuffer(`c${i}`))?.equals(value(120 + i)), true, `c${i}`);
    assert.equal((await w.getBuffer('p'))?.equals(value(70)), true);
    return await collect(slow, expectedSlow().length);
  } finally {
    slow.destroy();
    w.disconnect();
  }
}

async function reuses(port: number): Promise<number> {
  const r = new Redis({ port, host: '127.0.0.1' });
  try {
    return Number(/value_buffer_reuses:(\d+)/.exec(await r.info('blobasaur'))![1]);
  } finally {
    r.disconnect();
  }
}

describe('receive buffers of large values', () => {
  for (const asyncWrite of [true, false]) {
    it(`replies held for a client that does not read keep their bytes while the buffers are reused (async_write ${asyncWrite}, same bytes as redis-server)`, async () => {
      const ours = await startOurs({ num_shards: 2, async_write: asyncWrite });
      const redis = await startRedis();
      try {
        const before = await reuses(ours.port);
        const gotOurs = await scenario(ours.port);
        const reused = (await reuses(ours.port)) - before;
        const gotRedis = await scenario(redis.port);
        assert.ok(gotRedis.equals(expectedSlow()), 'redis-server');
        assert.ok(reused >= 20, `buffers were reused while the replies waited (${reused} reuses)`);
        assert.equal(gotOurs.length, gotRedis.length);
        assert.ok(gotOurs.equals(gotRedis), 'ours: byte for byte');
      } finally {
        await ours.close();
        await redis.stop();
      }
    });
  }
});
