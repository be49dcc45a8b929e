/**
 * An unauthenticated client that floods tiny commands and reads none of its -NOAUTH replies is
 * disconnected once the server holds a small amount of its output, instead of being allowed the
 * full output limits (64 MiB each by default). 50 such clients at once; the server runs as a child
 * process so its memory can be measured.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { mib, MiB, procMemory } from '../helpers/proc.js';
import { RawClient, resp } from '../helpers/raw.js';
import { spawnOurs, tempDir, type Child } from '../helpers/servers.js';

const CLIENTS = 50;
/** Each flooder offers this many bytes of `PING\r\n` (34 bytes of -NOAUTH reply per 6 bytes sent). */
const FLOOD_BYTES = 2 * MiB;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Connects, reads one -NOAUTH reply, then floods PINGs without reading; resolves when the server closes it. */
async function flood(port: number, deadline: number): Promise<{ closedByServer: boolean; sent: number }> {
  const s = new Socket();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.connect(port, '127.0.0.1', () => {
      s.off('error', reject);
      resolve();
    });
  });
  let closed = false;
  s.on('error', () => {});
  s.on('close', () => (closed = true));
  const first = await new Promise<string>((resolve) => {
    s.once('data', (d: Buffer) => resolve(d.toString('latin1')));
    s.write('PING\r\n');
  });
  assert.equal(first, '-NOAUTH Authentication required.\r\n');
  s.pause();
  const chunk = Buffer.from('PING\r\n'.repeat(64 * 1024 / 6));
  let sent = 0;
  while (sent < FLOOD_BYTES && !closed && Date.now() < deadline) {
    if (!s.write(chunk)) await Promise.race([new Promise((r) => s.once('drain', r)), sleep(100)]);
    sent += chunk.length;
  }
  // Read (and drop) what is left so a FIN is noticed; a reset closes the socket at once.
  s.resume();
  while (!closed && Date.now() < deadline) await sleep(20);
  const closedByServer = closed;
  s.destroy();
  return { closedByServer, sent };
}

describe('pre-auth output is capped', () => {
  let child: Child;
  before(async () => {
    const dir = tempDir();
    const config = join(dir, 'blobasaur.toml');
    writeFileSync(config, `data_dir = "${join(dir, 'data')}"\nrequirepass = "pw"\n`);
    child = await spawnOurs(['--config', config]);
  });
  after(async () => {
    child.proc.kill('SIGTERM');
    await child.exited;
  });

  it(`${CLIENTS} unauthenticated clients flooding PING without reading are disconnected; RSS stays bounded`, async (t) => {
    const pid = child.proc.pid!;
    const base = procMemory(pid);
    const deadline = Date.now() + 20_000;
    let peakRss = base.rss;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peakRss = Math.max(peakRss, procMemory(pid).rss);
        await sleep(50);
      }
    })();
    const results = await Promise.all(Array.from({ length: CLIENTS }, () => flood(child.port, deadline)));
    sampling = false;
    await sampler;
    const closedCount = results.filter((r) => r.closedByServer).length;
    t.diagnostic(`RSS ${mib(base.rss)}, peak while flooding ${mib(peakRss)}; ${closedCount}/${CLIENTS} closed by the server`);
    assert.equal(closedCount, CLIENTS);
    assert.ok(peakRss - base.rss < 100 * MiB, `RSS grew by ${mib(peakRss - base.rss)}`);
    // The server is fine, and a client that logs in is served.
    const c = new Redis(child.port, '127.0.0.1', { password: 'pw' });
    try {
      assert.equal(await c.ping(), 'PONG');
    } finally {
      c.disconnect();
    }
  });

  it('a client that authenticates first may pipeline as much as it likes', async () => {
    const c = await RawClient.connect(child.port);
    try {
      const n = 20_000;
      c.write(Buffer.concat([resp('AUTH', 'pw'), Buffer.from('PING\r\n'.repeat(n))]));
      await sleep(300);
      const replies = await c.replies(n + 1, 20_000);
      assert.equal(replies[0], '+OK\r\n');
      assert.equal(replies[n], '+PONG\r\n');
    } finally {
      c.destroy();
    }
  });
});
