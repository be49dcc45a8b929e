/**
 * Memory stays bounded under hostile load. The server runs as a child process (the real CLI) and its
 * resident memory is read from /proc/<pid>/status (VmRSS now, VmHWM for the peak). Sizes are scaled
 * down from the (2 GiB of pipelined SETs, one 400 MiB value) so the file runs in seconds;
 * docs/security.md has the full-size figures. Each test prints its measurements as test
 * diagnostics; PIPELINE_MIB and SLOW_VALUE_MIB rerun it at other sizes, e.g.
 *   PIPELINE_MIB=2048 SLOW_VALUE_MIB=400 node --test dist/test/integration/limits-memory.test.js
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { mib, MiB, procMemory } from '../helpers/proc.js';
import { RawClient, resp } from '../helpers/raw.js';
import { spawnOurs, tempDir, type Child } from '../helpers/servers.js';

const PIPELINE_MIB = Number(process.env.PIPELINE_MIB ?? 256);
const SLOW_VALUE_MIB = Number(process.env.SLOW_VALUE_MIB ?? 32);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Pings every 20 ms until stopped; every PING must be answered (within two minutes: a commit of a
 * huge value holds the event loop, and how long is what this measures). Returns the slowest round trip.
 */
function keepPinging(c: RawClient): { stop: () => Promise<{ count: number; slowestMs: number }> } {
  let running = true;
  let count = 0;
  let slowestMs = 0;
  const loop = (async () => {
    while (running) {
      const t = performance.now();
      c.write(resp('PING'));
      assert.deepEqual(await c.replies(1, 120_000), ['+PONG\r\n']);
      slowestMs = Math.max(slowestMs, performance.now() - t);
      count++;
      await sleep(20);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { count, slowestMs };
    },
  };
}

async function openSocket(port: number): Promise<Socket> {
  const s = connect(port, '127.0.0.1');
  s.on('error', () => {});
  s.setNoDelay(true);
  await new Promise((r) => s.once('connect', r));
  return s;
}

describe('memory under hostile clients (a fresh server child process per test)', () => {
  let dir: string;
  let child: Child;
  let pid: number;
  let bystander: RawClient;
  beforeEach(async () => {
    dir = tempDir();
    child = await spawnOurs(['--data-dir', join(dir, 'data')]);
    pid = child.proc.pid!;
    bystander = await RawClient.connect(child.port);
    bystander.write(resp('SET', 'bystander', 'here'));
    assert.equal(await bystander.reply(), '+OK\r\n');
  });
  afterEach(async () => {
    bystander.destroy();
    child.proc.kill('SIGTERM');
    assert.equal(await child.exited, 0);
    rmSync(dir, { recursive: true, force: true });
  });

  it('50 clients declaring 512 MiB values and sending almost nothing cost almost nothing', async (t) => {
    const base = procMemory(pid);
    const sockets: Socket[] = [];
    for (let i = 0; i < 50; i++) {
      const s = await openSocket(child.port);
      s.write(`*3\r\n$3\r\nSET\r\n$4\r\ndecl\r\n$${512 * MiB}\r\n${'x'.repeat(100)}`);
      sockets.push(s);
    }
    await sleep(300);
    const now = procMemory(pid);
    t.diagnostic(`RSS ${mib(base.rss)} -> ${mib(now.rss)} with 50 x 512 MiB declared`);
    assert.ok(now.rss - base.rss < 16 * MiB, `grew by ${mib(now.rss - base.rss)}`);
    bystander.write(resp('GET', 'bystander'));
    assert.equal(await bystander.reply(), '$4\r\nhere\r\n');
    for (const s of sockets) s.destroy();
  });

  it(`one ${SLOW_VALUE_MIB} MiB value sent slowly in 1 KiB pieces: the parser holds about its size, others are served`, async (t) => {
    const SIZE = SLOW_VALUE_MIB * MiB;
    const base = procMemory(pid);
    const pinger = keepPinging(bystander);
    const s = await openSocket(child.port);
    s.write(`*3\r\n$3\r\nSET\r\n$4\r\nslow\r\n$${SIZE}\r\n`);
    const piece = Buffer.alloc(1024, 's');
    const started = Date.now();
    for (let sent = 0; sent < SIZE; ) {
      // 64 KiB per timer tick in 1 KiB writes (no Nagle): the server sees many small reads.
      for (let j = 0; j < 64 && sent < SIZE; j++, sent += piece.length) s.write(piece);
      await sleep(1);
    }
    await sleep(200);
    const received = procMemory(pid);
    const reply = new Promise<string>((r) => s.once('data', (d: Buffer) => r(d.toString())));
    s.write('\r\n');
    assert.equal(await reply, '+OK\r\n');
    await sleep(100);
    const { count, slowestMs } = await pinger.stop();
    const stored = procMemory(pid);
    const parserGrowth = received.rss - base.rss;
    const peakGrowth = stored.peak - base.rss;
    t.diagnostic(
      `base RSS ${mib(base.rss)}; all ${mib(SIZE)} received, before the last CRLF: +${mib(parserGrowth)}; ` +
        `peak once stored: +${mib(peakGrowth)}; upload ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
        `${count} bystander PINGs, slowest ${slowestMs.toFixed(0)} ms`,
    );
    assert.ok(parserGrowth < SIZE * 1.25 + 16 * MiB, `the parser held ${mib(parserGrowth)} for a ${mib(SIZE)} value`);
    assert.ok(peakGrowth < SIZE * 6 + 64 * MiB, `peak grew by ${mib(peakGrowth)} for one ${mib(SIZE)} value`);
    assert.ok(count > 0);
    s.destroy();
  });

  it(`${PIPELINE_MIB} MiB of pipelined SETs from a client that reads no replies: RSS stays under the ceiling, others are served`, async (t) => {
    const VALUE = 2 * MiB;
    const TOTAL = PIPELINE_MIB * MiB;
    const CEILING = 400 * MiB;
    const base = procMemory(pid);
    const pinger = keepPinging(bystander);
    const s = await openSocket(child.port);
    s.pause(); // reads nothing until everything is sent
    const value = Buffer.alloc(VALUE, 'p');
    const started = Date.now();
    const n = TOTAL / VALUE;
    for (let i = 0; i < n; i++) {
      if (!s.write(resp('SET', `pipelined:${i}`, value))) await new Promise((r) => s.once('drain', r));
    }
    const sentMs = Date.now() - started;
    // Now read the replies: one +OK per SET, none lost.
    let oks = 0;
    await new Promise<void>((resolve) => {
      s.on('data', (d: Buffer) => {
        oks += d.toString('latin1').split('+OK\r\n').length - 1;
        if (oks >= n) resolve();
      });
      s.resume();
    });
    const { count, slowestMs } = await pinger.stop();
    const m = procMemory(pid);
    t.diagnostic(
      `sent ${mib(TOTAL)} in ${(sentMs / 1000).toFixed(1)} s; base RSS ${mib(base.rss)}, peak ${mib(m.peak)} ` +
        `(+${mib(m.peak - base.rss)}); ${count} bystander PINGs, slowest ${slowestMs.toFixed(0)} ms`,
    );
    assert.equal(oks, n);
    assert.ok(m.peak - base.rss < CEILING, `peak grew by ${mib(m.peak - base.rss)}`);
    assert.ok(count > 0);
    s.destroy();
    const io = new Redis({ host: '127.0.0.1', port: child.port, lazyConnect: true, retryStrategy: () => null });
    await io.connect();
    try {
      assert.deepEqual(await io.getBuffer(`pipelined:${n - 1}`), value);
      assert.equal(await io.get('bystander'), 'here');
    } finally {
      io.disconnect();
    }
  });
});
