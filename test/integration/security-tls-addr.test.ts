/**
 * TLS on its own address (tls_addr) and with the plaintext port turned off (addr = ""): the TLS
 * listener binds where tls_addr says and nowhere else, a TLS-only server has no plaintext port,
 * and the settings that cannot work are refused when the config is read.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { configSchema } from '../../src/config/index.js';
import { freePort, startOurs, type TestServer } from '../helpers/servers.js';
import { haveOpenssl, makeCerts, type TestCerts } from '../helpers/tls-certs.js';

const skip = haveOpenssl() ? false : 'openssl is not installed: TLS tests need it to make certificates';

/** Whether something accepts TCP connections at host:port. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.connect(port, host);
  });
}

async function pingOverTls(certs: TestCerts, host: string, port: number): Promise<string> {
  const io = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, tls: { ca: readFileSync(certs.ca), servername: 'localhost' } });
  try {
    await io.connect();
    await io.set('over', 'tls');
    return `${await io.ping()} ${await io.get('over')}`;
  } finally {
    io.disconnect();
  }
}

describe('tls_addr and addr = ""', { skip }, () => {
  let certs: TestCerts;
  const servers: TestServer[] = [];
  before(() => {
    certs = makeCerts();
  });
  after(async () => {
    for (const s of servers) await s.close();
    rmSync(certs.dir, { recursive: true, force: true });
  });
  const tlsFiles = (): Record<string, unknown> => ({ tls_cert_file: certs.serverCert, tls_key_file: certs.serverKey, tls_auth_clients: false });

  it('tls_addr binds TLS to its own address, apart from the plaintext one', async () => {
    const port = await freePort();
    const s = await startOurs({ addr: '127.0.0.1:0', tls_addr: `127.0.0.2:${port}`, ...tlsFiles() });
    servers.push(s);
    assert.equal(s.server.tlsPort, port);
    assert.equal(await pingOverTls(certs, '127.0.0.2', port), 'PONG tls');
    // Only there: the same port on the plaintext host has nothing behind it.
    assert.equal(await accepts('127.0.0.1', port), false);
    assert.ok(s.port > 0 && (await accepts('127.0.0.1', s.port)));
    const r = new Redis({ host: '127.0.0.1', port: s.port, maxRetriesPerRequest: 0 });
    assert.deepEqual(await r.config('GET', 'tls-port'), ['tls-port', String(port)]);
    r.disconnect();
  });

  it('addr = "" turns the plaintext port off: TLS is the only way in', async () => {
    const port = await freePort();
    const s = await startOurs({ addr: '', tls_addr: `127.0.0.1:${port}`, ...tlsFiles() });
    servers.push(s);
    assert.equal(s.port, 0);
    assert.equal(await pingOverTls(certs, '127.0.0.1', port), 'PONG tls');
  });

  it('settings that cannot work are refused with the reason', () => {
    const issues = (o: Record<string, unknown>): string[] => {
      const r = configSchema.safeParse(o);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    assert.deepEqual(issues({ addr: '' }), ['addr: addr = "" turns the plaintext port off, which needs TLS listening on its own address']);
    assert.deepEqual(issues({ addr: '', tls_port: 6380 }), ['addr: addr = "" turns the plaintext port off, which needs TLS listening on its own address']);
    assert.deepEqual(issues({ tls_addr: '127.0.0.1:6380', tls_port: 6381 }), ['tls_port: tls_port 6381 differs from the port of tls_addr 127.0.0.1:6380']);
    assert.deepEqual(issues({ tls_addr: 'nope' }), ['tls_addr: "nope" has no ":port" part']);
    assert.deepEqual(issues({ addr: '', tls_addr: '127.0.0.1:6380' }), []);
    assert.deepEqual(issues({ tls_addr: '127.0.0.1:6380', tls_port: 6380 }), []);
  });
});
