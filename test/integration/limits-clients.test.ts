/**
 * Per-client limits with Redis' names: maxclients (text compared with redis-server), timeout for
 * idle clients (closed silently, as redis-server does), proto_max_bulk_len and the query buffer
 * limit (refused by the parser before the bytes are buffered).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { RawClient, resp } from '../helpers/raw.js';
import { startOurs, startRedis, type RedisServer, type TestServer } from '../helpers/servers.js';

const MiB = 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('maxclients', () => {
  let ours: TestServer;
  let redis: RedisServer;
  before(async () => {
    ours = await startOurs({ maxclients: 2 });
    redis = await startRedis(['--maxclients', '2']);
  });
  after(async () => {
    await ours.close();
    await redis.stop();
  });

  it('the client over the limit gets redis-server\'s error and is closed; a freed place is reusable', async () => {
    const outputs: string[] = [];
    for (const port of [redis.port, ours.port]) {
      const a = await RawClient.connect(port);
      // Earlier probes (the port wait in the helpers) may not have been noticed as gone yet.
      for (let i = 0; i < 100; i++) {
        a.write(resp('INFO', 'clients'));
        if (/connected_clients:1\r\n/.test(await a.reply())) break;
        await sleep(20);
      }
      const b = await RawClient.connect(port);
      a.write(resp('PING'));
      b.write(resp('PING'));
      assert.equal(await a.reply(), '+PONG\r\n');
      assert.equal(await b.reply(), '+PONG\r\n');
      const third = await RawClient.connect(port);
      third.write(resp('PING'));
      outputs.push(await third.untilClosed());
      third.destroy();
      a.destroy();
      // Wait (asking through b) until the server has seen a leave.
      for (let i = 0; i < 100; i++) {
        b.write(resp('INFO', 'clients'));
        if (/connected_clients:1\r\n/.test(await b.reply())) break;
        await sleep(20);
      }
      const again = await RawClient.connect(port);
      again.write(resp('PING'));
      assert.equal(await again.reply(), '+PONG\r\n');
      again.destroy();
      b.destroy();
      await sleep(50);
    }
    assert.equal(outputs[0], '-ERR max number of clients reached\r\n');
    assert.equal(outputs[1], outputs[0]);
  });
});

describe('timeout (idle clients)', () => {
  let ours: TestServer;
  let redis: RedisServer;
  before(async () => {
    ours = await startOurs({ timeout: 1 });
    redis = await startRedis(['--timeout', '1']);
  });
  after(async () => {
    await ours.close();
    await redis.stop();
  });

  it('an idle client is closed without a reply after more than `timeout` seconds, as by redis-server', async () => {
    const watch = async (port: number): Promise<{ out: string; ms: number }> => {
      const c = await RawClient.connect(port);
      c.write(resp('PING'));
      assert.equal(await c.reply(), '+PONG\r\n');
      const started = Date.now();
      const out = await c.untilClosed(5000);
      c.destroy();
      return { out, ms: Date.now() - started };
    };
    const [theirs, mine] = await Promise.all([watch(redis.port), watch(ours.port)]);
    assert.equal(theirs.out, '');
    assert.equal(mine.out, theirs.out);
    assert.ok(mine.ms >= 1000 && mine.ms < 2500, `closed after ${mine.ms} ms`);
  });

  it('a client half-way through a command is idle too; a busy client is not', async () => {
    const stalled = await RawClient.connect(ours.port);
    stalled.write('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nonly-part-of-the-value');
    const busy = await RawClient.connect(ours.port);
    const started = Date.now();
    let pings = 0;
    while (!stalled.closed && Date.now() - started < 4000) {
      busy.write(resp('PING'));
      assert.equal(await busy.reply(), '+PONG\r\n');
      pings++;
      await sleep(200);
    }
    assert.equal(stalled.closed, true);
    assert.ok(Date.now() - started < 2500);
    assert.equal(busy.closed, false);
    assert.ok(pings >= 5);
    stalled.destroy();
    busy.destroy();
  });
});

describe('proto_max_bulk_len and client_query_buffer_limit', () => {
  let ours: TestServer;
  let redis: RedisServer;
  before(async () => {
    ours = await startOurs({ proto_max_bulk_len: MiB, client_query_buffer_limit: 2 * MiB });
    redis = await startRedis(['--proto-max-bulk-len', '1mb']);
  });
  after(async () => {
    await ours.close();
    await redis.stop();
  });

  it('a bulk declared over proto_max_bulk_len is refused at its header, as by redis-server', async () => {
    const bytes = `*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${MiB + 1}\r\n`;
    const answers: string[] = [];
    for (const port of [redis.port, ours.port]) {
      const c = await RawClient.connect(port);
      c.write(bytes);
      answers.push(await c.untilClosed());
      c.destroy();
    }
    assert.equal(answers[0], '-ERR Protocol error: invalid bulk length\r\n');
    assert.equal(answers[1], answers[0]);
  });

  it('exactly proto_max_bulk_len is accepted', async () => {
    const c = await RawClient.connect(ours.port);
    c.write(resp('SET', 'max', Buffer.alloc(MiB, 1)));
    assert.equal(await c.reply(), '+OK\r\n');
    c.write(resp('GET', 'max'));
    assert.equal((await c.reply()).length, MiB + `$${MiB}\r\n\r\n`.length);
    c.destroy();
  });

  it('a command whose arguments add up past client_query_buffer_limit is refused; other clients are served', async () => {
    const bystander = await RawClient.connect(ours.port);
    const c = await RawClient.connect(ours.port);
    const part = Buffer.alloc(MiB - 10, 2);
    c.write(resp('HSET', 'ns', 'a', part, 'b', part, 'c', part));
    assert.equal(await c.untilClosed(), '-ERR Protocol error: query buffer limit exceeded\r\n');
    bystander.write(resp('HEXISTS', 'ns', 'a'));
    assert.equal(await bystander.reply(), ':0\r\n');
    c.destroy();
    bystander.destroy();
  });
});

describe('connections the server ends are really gone', () => {
  let ours: TestServer;
  let watcher: RawClient;
  before(async () => {
    ours = await startOurs();
    watcher = await RawClient.connect(ours.port);
  });
  after(async () => {
    watcher.destroy();
    await ours.close();
  });

  async function connectedClients(): Promise<number> {
    watcher.write(resp('INFO', 'clients'));
    return Number(/connected_clients:(\d+)/.exec(await watcher.reply())![1]);
  }

  async function waitForClients(n: number, withinMs: number): Promise<number> {
    const deadline = Date.now() + withinMs;
    let count = await connectedClients();
    while (count !== n && Date.now() < deadline) {
      await sleep(50);
      count = await connectedClients();
    }
    return count;
  }

  it('after a protocol error, even when the peer sent more behind the bad bytes', async () => {
    // The server stops reading at the error; what the peer sent after it (and then its FIN) still
    // has to be read for the close to be noticed.
    for (let i = 0; i < 5; i++) {
      const s = connect({ port: ours.port, host: '127.0.0.1', allowHalfOpen: true });
      s.on('error', () => {});
      s.on('data', () => {});
      await new Promise((r) => s.once('connect', r));
      s.write(Buffer.concat([resp('SET', 'k', 'v'), Buffer.from('*1\r\n$x\r\n'), Buffer.alloc(256 * 1024, 'm')]));
      await sleep(20);
      s.destroy();
    }
    assert.equal(await waitForClients(1, 3000), 1);
  });

  it('after a protocol error, whether the peer then leaves, stays silent, or keeps sending', async () => {
    const leaves = await RawClient.connect(ours.port);
    leaves.write('*1\r\n$x\r\n');
    await sleep(50);
    leaves.destroy();
    const silent = await RawClient.connect(ours.port);
    silent.write('*1\r\n$x\r\n');
    const chatty = await RawClient.connect(ours.port);
    chatty.write('*1\r\n$x\r\n');
    const timer = setInterval(() => chatty.write(resp('PING')), 20);
    assert.equal(await silent.untilClosed(4000), '-ERR Protocol error: invalid bulk length\r\n');
    assert.equal(await waitForClients(1, 3000), 1);
    clearInterval(timer);
    silent.destroy();
    chatty.destroy();
  });

  it('after QUIT, even if the peer keeps sending', async () => {
    const c = await RawClient.connect(ours.port);
    c.write(Buffer.concat([resp('QUIT'), resp('PING')]));
    const timer = setInterval(() => c.write(resp('PING')), 20);
    assert.equal(await c.untilClosed(4000), '+OK\r\n');
    clearInterval(timer);
    assert.equal(await waitForClients(1, 1000), 1);
    c.destroy();
  });
});
