/**
 * TCP connections to the TLS port that never handshake: they count toward maxclients (so they
 * cannot take every file descriptor), plain-port clients are still served while they are below
 * it, and each is destroyed once its handshake timeout (10 s) has passed, even if it trickles bytes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { Redis } from 'ioredis';
import { TLS_HANDSHAKE_TIMEOUT_MS } from '../../src/server/tls.js';
import { freePort, startOurs, type TestServer } from '../helpers/servers.js';
import { haveOpenssl, makeCerts, type TestCerts } from '../helpers/tls-certs.js';

const skip = haveOpenssl() ? false : 'openssl is not installed: TLS tests need it to make certificates';
const MAX_CLIENTS = 40;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Held {
  socket: Socket;
  closedAt: number | null;
}

function openRaw(port: number): Promise<Held> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    const held: Held = { socket, closedAt: null };
    socket.on('error', () => {});
    socket.on('close', () => (held.closedAt = Date.now()));
    socket.once('connect', () => resolve(held));
    socket.once('error', reject);
    socket.connect(port, '127.0.0.1');
  });
}

describe('TLS handshakes that never finish', { skip }, () => {
  let certs: TestCerts;
  let ours: TestServer;
  let tlsPort: number;
  before(async () => {
    certs = makeCerts();
    tlsPort = await freePort();
    ours = await startOurs({
      tls_port: tlsPort,
      tls_cert_file: certs.serverCert,
      tls_key_file: certs.serverKey,
      tls_auth_clients: false,
      maxclients: MAX_CLIENTS,
    });
  });
  after(async () => {
    await ours.close();
    rmSync(certs.dir, { recursive: true, force: true });
  });

  it('count toward maxclients and are destroyed after the handshake timeout; plain clients are served meanwhile', async (t) => {
    const started = Date.now();
    // Below maxclients: a plain-port client is still served.
    const held: Held[] = [];
    for (let i = 0; i < MAX_CLIENTS - 5; i++) held.push(await openRaw(tlsPort));
    const plain = new Redis(ours.port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => null });
    assert.equal(await plain.ping(), 'PONG');
    // Trickle a byte now and then on half of them: that must not extend their life.
    // The bytes are the start of a plausible ClientHello (record header, handshake header, version,
    // then the random field), so OpenSSL keeps waiting for the rest rather than failing the handshake.
    const hello = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]), Buffer.alloc(32, 7)]);
    let next = 0;
    const trickle = setInterval(() => {
      const byte = hello.subarray(next, next + 1);
      next++;
      for (let i = 0; i < held.length; i += 2) if (held[i].closedAt === null) held[i].socket.write(byte);
    }, 1000);
    try {
      // Past maxclients: the extra raw connections are closed at once, and so is a plain client.
      const extra: Held[] = [];
      for (let i = 0; i < 20; i++) extra.push(await openRaw(tlsPort));
      await sleep(500);
      const extraOpen = extra.filter((h) => h.closedAt === null).length;
      assert.ok(extraOpen <= 4, `${extraOpen} of 20 connections past maxclients still open`);
      const refused = new Redis(ours.port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
      await assert.rejects(refused.connect().then(() => refused.ping()), /max number of clients reached|Connection is closed/);
      refused.disconnect();
      held.push(...extra.filter((h) => h.closedAt === null));
      // Every held connection is destroyed by the timeout (not before it, not much after).
      const deadline = started + TLS_HANDSHAKE_TIMEOUT_MS + 5000;
      while (held.some((h) => h.closedAt === null) && Date.now() < deadline) await sleep(100);
      const open = held.filter((h) => h.closedAt === null).length;
      assert.equal(open, 0, `${open} handshaking connections still open after ${Date.now() - started} ms`);
      const first = Math.min(...held.map((h) => h.closedAt! - started));
      t.diagnostic(`${held.length} held connections closed ${first}..${Math.max(...held.map((h) => h.closedAt! - started))} ms after the first connected`);
      assert.ok(first >= TLS_HANDSHAKE_TIMEOUT_MS - 500, `one was closed after ${first} ms`);
    } finally {
      clearInterval(trickle);
      for (const h of held) h.socket.destroy();
    }
    // The slots are free again: new plain clients are served.
    const after = new Redis(ours.port, '127.0.0.1');
    try {
      assert.equal(await after.ping(), 'PONG');
      assert.equal(await plain.ping(), 'PONG');
    } finally {
      after.disconnect();
      plain.disconnect();
    }
  });
});
