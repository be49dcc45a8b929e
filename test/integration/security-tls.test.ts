/**
 * TLS on tls_port, with certificates made in the test by the system's openssl: redis-cli --tls and
 * ioredis over TLS, client certificates required or not, AUTH over TLS, and start-up refusals for
 * settings that cannot work.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { configSchema } from '../../src/config/index.js';
import { tlsServerOptions, TlsSetupError } from '../../src/server/tls.js';
import { redisCli } from '../helpers/cli.js';
import { resp } from '../helpers/raw.js';
import { freePort, MAIN_JS, startOurs, tempDir, type TestServer } from '../helpers/servers.js';
import { haveOpenssl, makeCerts, type TestCerts } from '../helpers/tls-certs.js';

const run = promisify(execFile);
const OPENSSL = haveOpenssl();
const skip = OPENSSL ? false : 'openssl is not installed: TLS tests need it to make certificates';

/** redis-cli over TLS; resolves with stdout+stderr and the exit code instead of throwing. */
async function cliTls(port: number, tlsArgs: string[], args: string[]): Promise<{ out: string; code: number }> {
  try {
    const { stdout, stderr } = await run('redis-cli', ['--tls', ...tlsArgs, '-h', '127.0.0.1', '-p', String(port), ...args]);
    return { out: stdout + stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    return { out: `${e.stdout ?? ''}${e.stderr ?? ''}`, code: e.code ?? -1 };
  }
}

describe('TLS with client certificates required (tls_auth_clients = true)', { skip }, () => {
  let certs: TestCerts;
  let ours: TestServer;
  let tlsPort: number;
  let withCert: string[];
  before(async () => {
    certs = makeCerts();
    tlsPort = await freePort();
    ours = await startOurs({
      tls_port: tlsPort,
      tls_cert_file: certs.serverCert,
      tls_key_file: certs.serverKey,
      tls_ca_cert_file: certs.ca,
    });
    withCert = ['--cacert', certs.ca, '--cert', certs.clientCert, '--key', certs.clientKey];
  });
  after(async () => {
    await ours.close();
    rmSync(certs.dir, { recursive: true, force: true });
  });

  it('redis-cli --tls with a client certificate runs commands', async () => {
    assert.equal(ours.server.tlsPort, tlsPort);
    assert.deepEqual(await cliTls(tlsPort, withCert, ['PING']), { out: 'PONG\n', code: 0 });
    assert.deepEqual(await cliTls(tlsPort, withCert, ['SET', 'tls-key', 'over tls']), { out: 'OK\n', code: 0 });
    assert.deepEqual(await cliTls(tlsPort, withCert, ['HSET', 'ns', 'f', 'v']), { out: '1\n', code: 0 });
    // The plain port serves the same data.
    assert.equal((await redisCli(ours.port, ['GET', 'tls-key'])).trim(), 'over tls');
  });

  it('ioredis over TLS: binary values, pipelines, RESP replies intact', async () => {
    const io = new Redis({
      host: '127.0.0.1',
      port: tlsPort,
      lazyConnect: true,
      tls: { ca: readFileSync(certs.ca), cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey), servername: 'localhost' },
    });
    await io.connect();
    const blob = Buffer.alloc(3 * 1024 * 1024 + 7);
    for (let i = 0; i < blob.length; i++) blob[i] = (i * 131 + 7) & 0xff;
    await io.set('tls-blob', blob);
    assert.ok((await io.getBuffer('tls-blob'))!.equals(blob));
    const pipe = io.pipeline();
    for (let i = 0; i < 500; i++) pipe.set(`p${i}`, String(i));
    for (let i = 0; i < 500; i++) pipe.get(`p${i}`);
    const results = (await pipe.exec())!;
    assert.equal(results.length, 1000);
    for (let i = 0; i < 500; i++) assert.equal(results[500 + i][1], String(i));
    assert.equal(await io.get('tls-key'), 'over tls');
    io.disconnect();
  });

  it('a client without a certificate, or with one from another CA, is refused', async () => {
    const none = await cliTls(tlsPort, ['--cacert', certs.ca], ['PING']);
    assert.notEqual(none.out.trim(), 'PONG');
    const stranger = await cliTls(tlsPort, ['--cacert', certs.ca, '--cert', certs.strangerCert, '--key', certs.strangerKey], ['PING']);
    assert.notEqual(stranger.out.trim(), 'PONG');
    // Node's client sees the handshake refused.
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port: tlsPort, ca: readFileSync(certs.ca), servername: 'localhost' }, () => {
          s.write(resp('PING'));
        });
        s.on('data', (d) => resolve(d.toString()));
        s.on('error', reject);
        s.on('close', () => reject(new Error('closed without a reply')));
      }),
    );
    // The server is fine.
    assert.deepEqual(await cliTls(tlsPort, withCert, ['PING']), { out: 'PONG\n', code: 0 });
  });

  it('plain bytes on the TLS port and a half-finished handshake do not hurt the server', async () => {
    const raw = await import('node:net');
    const plain = raw.connect(tlsPort, '127.0.0.1');
    plain.on('error', () => {});
    plain.write(resp('PING'));
    await new Promise((r) => plain.once('close', r));
    const half = raw.connect(tlsPort, '127.0.0.1');
    half.on('error', () => {});
    half.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x50])); // a TLS record header, then nothing
    assert.deepEqual(await cliTls(tlsPort, withCert, ['PING']), { out: 'PONG\n', code: 0 });
    half.destroy();
  });
});

describe('TLS without client certificates, with requirepass', { skip }, () => {
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
      requirepass: 'tls-pw',
    });
  });
  after(async () => {
    await ours.close();
    rmSync(certs.dir, { recursive: true, force: true });
  });

  it('redis-cli --tls needs only the CA; AUTH gates commands as on the plain port', async () => {
    assert.match((await cliTls(tlsPort, ['--cacert', certs.ca], ['GET', 'x'])).out, /NOAUTH Authentication required/);
    assert.deepEqual(await cliTls(tlsPort, ['--cacert', certs.ca, '-a', 'tls-pw', '--no-auth-warning'], ['SET', 'x', 'y']), { out: 'OK\n', code: 0 });
    assert.match((await cliTls(tlsPort, ['--cacert', certs.ca, '-a', 'wrong', '--no-auth-warning'], ['GET', 'x'])).out, /WRONGPASS|AUTH failed/);
  });

  it('ioredis over TLS with a password', async () => {
    const io = new Redis({ host: '127.0.0.1', port: tlsPort, password: 'tls-pw', lazyConnect: true, tls: { ca: readFileSync(certs.ca), servername: 'localhost' } });
    await io.connect();
    assert.equal(await io.get('x'), 'y');
    io.disconnect();
  });

  it('a client that does not trust the server certificate fails its handshake', async () => {
    const r = await cliTls(tlsPort, [], ['PING']);
    assert.notEqual(r.out.trim(), 'PONG');
  });
});

describe('TLS settings that cannot work stop the start', { skip }, () => {
  let certs: TestCerts;
  before(() => {
    certs = makeCerts();
  });
  after(() => rmSync(certs.dir, { recursive: true, force: true }));

  const settings = (o: Record<string, unknown>) => configSchema.parse({ tls_port: 16379, ...o });

  it('missing or unreadable files, a missing CA, a mismatched key', () => {
    assert.equal(tlsServerOptions(configSchema.parse({})), null);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ tls_key_file: certs.serverKey, tls_auth_clients: false }, /tls_port or tls_addr is set, so tls_cert_file must name a PEM file/],
      [{ tls_cert_file: certs.serverCert, tls_auth_clients: false }, /tls_port or tls_addr is set, so tls_key_file must name a PEM file/],
      [{ tls_cert_file: '/nonexistent/cert.pem', tls_key_file: certs.serverKey, tls_auth_clients: false }, /tls_cert_file "\/nonexistent\/cert.pem" cannot be read: ENOENT/],
      [{ tls_cert_file: certs.serverCert, tls_key_file: certs.serverKey }, /tls_auth_clients = true needs tls_ca_cert_file/],
      [{ tls_cert_file: certs.serverCert, tls_key_file: certs.clientKey, tls_auth_clients: false }, /cannot be used: .*key values mismatch/],
    ];
    for (const [o, message] of cases) {
      assert.throws(() => tlsServerOptions(settings(o)), (err: unknown) => err instanceof TlsSetupError && message.test(err.message));
    }
  });

  it('the CLI prints the problem and exits 1, without a stack trace', async () => {
    const dir = tempDir();
    const file = join(dir, 'config.toml');
    writeFileSync(file, `tls_port = ${await freePort()}\ntls_cert_file = "/nonexistent/cert.pem"\ntls_key_file = "${certs.serverKey}"\n`);
    const result = await run(process.execPath, [MAIN_JS, '--config', file, '--addr', '127.0.0.1:0', '--data-dir', join(dir, 'data')]).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    assert.equal(result.code, 1);
    assert.equal(result.stderr, 'blobasaur: tls_cert_file "/nonexistent/cert.pem" cannot be read: ENOENT\n');
    rmSync(dir, { recursive: true, force: true });
  });
});
