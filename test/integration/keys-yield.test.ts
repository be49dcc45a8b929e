/**
 * KEYS over a large keyspace walks it in steps and gives the event loop back between them: another
 * client's PING is answered while a KEYS over 200,000 keys is still running, and KEYS still
 * returns every key.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { Redis } from 'ioredis';
import { spawnOurs } from '../helpers/servers.js';

const KEYS = 200_000;
const BATCH = 10_000;

describe('KEYS on a large keyspace', () => {
  it('lets other clients be served while it runs', async () => {
    const server = await spawnOurs(['--shards', '4']);
    const writer = new Redis({ port: server.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    const other = new Redis({ port: server.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    try {
      for (let from = 0; from < KEYS; from += BATCH) {
        const p = writer.pipeline();
        for (let i = from; i < from + BATCH; i++) p.set(`key:${i}`, 'v');
        const res = await p.exec();
        assert.ok(res !== null && res.every(([err]) => err === null));
      }
      await other.ping();

      // KEYS on a raw socket, to see when the first byte of its reply arrives.
      const raw = new Socket();
      await new Promise<void>((resolve, reject) => {
        raw.once('error', reject);
        raw.connect(server.port, '127.0.0.1', () => resolve());
      });
      let firstByteAt = 0;
      let received = Buffer.alloc(0);
      const replied = new Promise<void>((resolve) => {
        raw.on('data', (d: Buffer) => {
          if (firstByteAt === 0) firstByteAt = performance.now();
          received = Buffer.concat([received, d]);
          // The reply is complete once it holds as many bulk strings as keys (each "$N\r\nkey:i\r\n").
          if (received.length > 16 && countBulk(received) === KEYS) resolve();
        });
      });
      raw.write('*2\r\n$4\r\nKEYS\r\n$5\r\nkey:*\r\n');
      // Well inside the walk (it takes hundreds of ms over 200,000 keys), another client's PING.
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(firstByteAt, 0, 'KEYS still running when the PING is sent');
      assert.equal(await other.ping(), 'PONG');
      const pongAt = performance.now();
      await Promise.race([replied, new Promise((_, reject) => setTimeout(() => reject(new Error('KEYS did not finish in 60 s')), 60_000))]);
      raw.destroy();
      assert.ok(firstByteAt > pongAt, `PING answered ${(firstByteAt - pongAt).toFixed(1)} ms before KEYS's reply began`);
      const listed = new Set(received.toString('latin1').match(/key:\d+/g));
      assert.equal(listed.size, KEYS);
    } finally {
      writer.disconnect();
      other.disconnect();
      server.proc.kill('SIGTERM');
      assert.equal(await server.exited, 0);
    }
  });
});

/** Bulk strings in a RESP array reply so far. */
function countBulk(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(0x24); i >= 0; i = buf.indexOf(0x24, i + 1)) n++;
  return n;
}
