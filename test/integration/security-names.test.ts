/**
 * Injection: keys, namespaces, fields and values are data, never SQL or file paths. Hostile names
 * (quotes, `;`, SQL, NUL bytes, `../`, shard file names, 64 KiB names, every byte value) are stored
 * and read back exactly, before and after a restart, and nothing appears in the data directory
 * but the shard files.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { Redis } from 'ioredis';
import { RawClient, resp } from '../helpers/raw.js';
import { startOurs, type TestServer } from '../helpers/servers.js';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

function hostileNames(): Buffer[] {
  const every = Buffer.alloc(256);
  for (let i = 0; i < 256; i++) every[i] = i;
  const mixed = Buffer.alloc(64 * 1024);
  for (let i = 0; i < mixed.length; i++) mixed[i] = "';\0\"../\\%_*?[]\r\n"[i % 16].charCodeAt(0);
  const names = [
    "'",
    '"',
    '`',
    "'; DROP TABLE blobs; --",
    '"); DELETE FROM ns_blobs; --',
    "x' OR '1'='1",
    'a;b;c',
    'ATTACH DATABASE \'/tmp/pwned.db\' AS p; --',
    '\0',
    'a\0b',
    '\0\0\0',
    'key\0\'; DROP TABLE blobs; --',
    '../../../../etc/passwd',
    '..\\..\\..\\windows',
    '/tmp/blobasaur-owned',
    'shard-0.db',
    'shard-0.db-wal',
    'blobasaur.json',
    '.',
    '..',
    '%',
    '_',
    '%s%n%x',
    '*',
    '?',
    '[a-z]',
    '\\',
    '\r\n',
    '\r\n*1\r\n$8\r\nFLUSHALL\r\n',
    ' ',
    '',
    'NULL',
    'null',
    '\u043a\u043b\u044e\u0447\u{1F996}',
  ].map(b);
  names.push(every, Buffer.alloc(64 * 1024, "'"), Buffer.alloc(64 * 1024, 0), mixed);
  return names;
}

/** Files in the data directory (names only, sorted), ignoring SQLite's WAL and shared-memory files. */
function dataFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => !f.endsWith('-wal') && !f.endsWith('-shm')).sort();
}

describe('hostile keys, namespaces and fields', () => {
  let ours: TestServer;
  let c: RawClient;
  const names = hostileNames();
  const valueOf = (name: Buffer, tag: string): Buffer => Buffer.concat([b(`${tag}:`), name, b("'; --\0")]);
  let filesBefore: string[];
  /** Fields stored under each namespace: two fixed hostile ones and the namespace's own name. */
  const fieldsOf = (ns: Buffer): Buffer[] => [names[3], names[9], ns].filter((f, i, all) => all.findIndex((g) => g.equals(f)) === i);

  before(async () => {
    ours = await startOurs();
    c = await RawClient.connect(ours.port);
    filesBefore = dataFiles(ours.dataDir);
  });
  after(async () => {
    c.destroy();
    await ours.close();
  });

  it('are stored and read back exactly as plain keys', async () => {
    for (const name of names) {
      c.write(resp('SET', name, valueOf(name, 'plain')));
      assert.equal(await c.reply(), '+OK\r\n');
    }
    for (const name of names) {
      const v = valueOf(name, 'plain');
      c.write(resp('GET', name));
      c.write(resp('EXISTS', name));
      assert.deepEqual(await c.replies(2), [`$${v.length}\r\n${v.toString('latin1')}\r\n`, ':1\r\n'], `key ${JSON.stringify(name.subarray(0, 40).toString('latin1'))}`);
    }
  });

  it('are stored and read back exactly as namespaces and fields, apart from the plain keys', async () => {
    for (const ns of names) {
      for (const field of fieldsOf(ns)) {
        c.write(resp('HSET', ns, field, valueOf(Buffer.concat([ns, field]), 'ns')));
        assert.equal(await c.reply(), ':1\r\n');
      }
    }
    for (const ns of names) {
      for (const field of fieldsOf(ns)) {
        const v = valueOf(Buffer.concat([ns, field]), 'ns');
        c.write(resp('HGET', ns, field));
        assert.equal(await c.reply(), `$${v.length}\r\n${v.toString('latin1')}\r\n`);
      }
      // The plain key of the same name is untouched.
      const plain = valueOf(ns, 'plain');
      c.write(resp('GET', ns));
      assert.equal(await c.reply(), `$${plain.length}\r\n${plain.toString('latin1')}\r\n`);
    }
    c.write(resp('DBSIZE'));
    assert.equal(await c.reply(), `:${names.length * 2}\r\n`);
    c.write(resp('HLEN', names[0]));
    assert.equal(await c.reply(), ':3\r\n');
  });

  it('leave the data directory alone, and survive a restart byte for byte', async () => {
    assert.deepEqual(dataFiles(ours.dataDir), filesBefore);
    c.destroy();
    await ours.close();
    ours = await startOurs({ data_dir: ours.dataDir });
    c = await RawClient.connect(ours.port);
    const io = new Redis({ host: '127.0.0.1', port: ours.port, lazyConnect: true, retryStrategy: () => null });
    await io.connect();
    try {
      for (const name of names) {
        assert.deepEqual(await io.getBuffer(name), valueOf(name, 'plain'));
        assert.deepEqual(await io.hgetBuffer(name, name), valueOf(Buffer.concat([name, name]), 'ns'));
      }
    } finally {
      io.disconnect();
    }
    assert.deepEqual(dataFiles(ours.dataDir), filesBefore);
  });

  it('are deleted exactly: one hostile name never matches another', async () => {
    // Delete every other field, then every other key; the rest must remain.
    for (let i = 0; i < names.length; i += 2) {
      c.write(resp('HDEL', names[i], names[i]));
      assert.equal(await c.reply(), ':1\r\n');
    }
    for (let i = 0; i < names.length; i++) {
      c.write(resp('HEXISTS', names[i], names[i]));
      assert.equal(await c.reply(), i % 2 === 0 ? ':0\r\n' : ':1\r\n', `field #${i}`);
    }
    for (let i = 0; i < names.length; i += 2) {
      c.write(resp('DEL', names[i]));
      assert.match(await c.reply(), /^:[12]\r\n$/);
    }
    for (let i = 0; i < names.length; i++) {
      const plain = valueOf(names[i], 'plain');
      c.write(resp('GET', names[i]));
      assert.equal(await c.reply(), i % 2 === 0 ? '$-1\r\n' : `$${plain.length}\r\n${plain.toString('latin1')}\r\n`, `key #${i}`);
      c.write(resp('HEXISTS', names[i], names[i]));
      assert.equal(await c.reply(), i % 2 === 0 ? ':0\r\n' : ':1\r\n', `field #${i}`);
    }
  });
});
