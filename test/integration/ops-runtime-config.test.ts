/**
 * What CONFIG SET, CONFIG RESETSTAT, CLIENT KILL and CLIENT LIST do on our server, seen by real
 * clients over sockets (their replies are compared with redis-server in introspection.test.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, resp } from '../helpers/raw.js';
import { startOurs, type TestServer } from '../helpers/servers.js';

async function ask(c: RawClient, ...cmd: string[]): Promise<string> {
  c.write(resp(...cmd));
  return c.reply();
}

describe('CONFIG SET at run time', () => {
  let ours: TestServer;
  const open: RawClient[] = [];
  const connect = async (): Promise<RawClient> => {
    const c = await RawClient.connect(ours.port);
    open.push(c);
    return c;
  };
  before(async () => {
    ours = await startOurs();
  });
  after(async () => {
    for (const c of open) c.destroy();
    await ours.close();
  });

  it('maxclients: new clients over the limit are refused, the ones already in stay', async () => {
    const a = await connect();
    const b = await connect();
    assert.equal(await ask(a, 'CONFIG', 'SET', 'maxclients', '2'), '+OK\r\n');
    const c = await connect();
    assert.equal(await c.untilClosed(), '-ERR max number of clients reached\r\n');
    assert.equal(await ask(b, 'PING'), '+PONG\r\n');
    assert.equal(await ask(a, 'CONFIG', 'SET', 'maxclients', '10000'), '+OK\r\n');
    const d = await connect();
    assert.equal(await ask(d, 'PING'), '+PONG\r\n');
    for (const x of [a, b, d]) x.destroy();
  });

  it('timeout: an idle client is closed once it is set, and never after it is 0 again', async () => {
    const admin = await connect();
    const idle = await connect();
    assert.equal(await ask(idle, 'PING'), '+PONG\r\n');
    assert.equal(await ask(admin, 'CONFIG', 'SET', 'timeout', '1'), '+OK\r\n');
    assert.equal(await idle.untilClosed(5000), '');
    // The admin was idle as long: gone too. A new client turns the timeout off again.
    await admin.untilClosed(5000);
    const next = await connect();
    assert.equal(await ask(next, 'CONFIG', 'GET', 'timeout'), '*2\r\n$7\r\ntimeout\r\n$1\r\n1\r\n');
    assert.equal(await ask(next, 'CONFIG', 'SET', 'timeout', '0'), '+OK\r\n');
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await ask(next, 'PING'), '+PONG\r\n');
    next.destroy();
  });

  it('requirepass: new clients must AUTH, authenticated ones stay; clearing it lets waiting clients in', async () => {
    const admin = await connect();
    assert.equal(await ask(admin, 'CONFIG', 'SET', 'requirepass', 'pw'), '+OK\r\n');
    assert.equal(await ask(admin, 'PING'), '+PONG\r\n');
    const late = await connect();
    assert.equal(await ask(late, 'GET', 'x'), '-NOAUTH Authentication required.\r\n');
    assert.equal(await ask(late, 'AUTH', 'wrong'), '-WRONGPASS invalid username-password pair or user is disabled.\r\n');
    const later = await connect();
    assert.equal(await ask(later, 'AUTH', 'pw'), '+OK\r\n');
    assert.equal(await ask(later, 'GET', 'x'), '$-1\r\n');
    assert.equal(await ask(admin, 'CONFIG', 'SET', 'requirepass', ''), '+OK\r\n');
    assert.equal(await ask(late, 'GET', 'x'), '$-1\r\n');
    assert.equal(await ask(late, 'AUTH', 'x'), '-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n');
    for (const x of [admin, late, later]) x.destroy();
  });

  it('loglevel and client-query-buffer-limit: CONFIG GET shows them; a command over the new limit is refused', async () => {
    const c = await connect();
    // The test server logs nothing (pino "silent"), which Redis' names can only call warning.
    assert.equal(await ask(c, 'CONFIG', 'GET', 'loglevel'), '*2\r\n$8\r\nloglevel\r\n$7\r\nwarning\r\n');
    assert.equal(await ask(c, 'CONFIG', 'SET', 'loglevel', 'debug'), '+OK\r\n');
    assert.equal(await ask(c, 'CONFIG', 'GET', 'loglevel'), '*2\r\n$8\r\nloglevel\r\n$5\r\ndebug\r\n');
    assert.equal(await ask(c, 'CONFIG', 'SET', 'loglevel', 'notice'), '+OK\r\n');
    assert.equal(await ask(c, 'CONFIG', 'SET', 'client-query-buffer-limit', '1mb'), '+OK\r\n');
    assert.equal(await ask(c, 'CONFIG', 'GET', 'client-query-buffer-limit'), '*2\r\n$25\r\nclient-query-buffer-limit\r\n$7\r\n1048576\r\n');
    const big = await connect();
    big.write(resp('SET', 'k', 'x'.repeat(2 * 1024 * 1024)));
    assert.match(await big.untilClosed(), /^-ERR Protocol error: query buffer limit exceeded\r\n$/);
    assert.equal(await ask(c, 'CONFIG', 'SET', 'client-query-buffer-limit', '1gb'), '+OK\r\n');
    const ok = await connect();
    assert.equal(await ask(ok, 'SET', 'k', 'x'.repeat(2 * 1024 * 1024)), '+OK\r\n');
    c.destroy();
    ok.destroy();
  });

  it('slowlog-*: every command logged at 0, the log trimmed to slowlog-max-len, nothing at -1', async () => {
    const c = await connect();
    await ask(c, 'CONFIG', 'SET', 'slowlog-log-slower-than', '0', 'slowlog-max-len', '3');
    await ask(c, 'SLOWLOG', 'RESET');
    for (let i = 0; i < 5; i++) await ask(c, 'SET', `k${i}`, 'v');
    assert.equal(await ask(c, 'SLOWLOG', 'LEN'), ':3\r\n');
    const entries = await ask(c, 'SLOWLOG', 'GET');
    // Newest first: SLOWLOG LEN, then the last two SETs.
    assert.match(entries, /^\*3\r\n\*6\r\n:\d+\r\n:\d+\r\n:\d+\r\n\*2\r\n\$7\r\nSLOWLOG\r\n\$3\r\nLEN\r\n/);
    assert.match(entries, /\$3\r\nSET\r\n\$2\r\nk4\r\n.*\$3\r\nSET\r\n\$2\r\nk3\r\n/s);
    await ask(c, 'CONFIG', 'SET', 'slowlog-log-slower-than', '-1');
    await ask(c, 'SLOWLOG', 'RESET');
    await ask(c, 'SET', 'k', 'v');
    assert.equal(await ask(c, 'SLOWLOG', 'LEN'), ':0\r\n');
    await ask(c, 'CONFIG', 'SET', 'slowlog-log-slower-than', '10000', 'slowlog-max-len', '128');
    c.destroy();
  });

  it('CONFIG RESETSTAT zeroes INFO stats, commandstats and errorstats', async () => {
    const c = await connect();
    await ask(c, 'GET', 'x');
    await ask(c, 'NOSUCH');
    assert.match(await ask(c, 'INFO', 'commandstats'), /cmdstat_get:calls=[1-9]/);
    assert.equal(await ask(c, 'CONFIG', 'RESETSTAT'), '+OK\r\n');
    const stats = await ask(c, 'INFO', 'stats', 'commandstats', 'errorstats');
    assert.match(stats, /\r\ntotal_commands_processed:1\r\n/);
    assert.match(stats, /\r\ntotal_connections_received:0\r\n/);
    assert.doesNotMatch(stats, /cmdstat_get|errorstat_ERR/);
    // As in Redis, a command is counted once it has run: RESETSTAT itself, not yet this INFO.
    assert.match(stats, /# Commandstats\r\ncmdstat_config\|resetstat:calls=1,[^\r]*\r\n\r\n/);
    c.destroy();
  });
});

describe('CLIENT KILL and CLIENT LIST on our server', () => {
  let ours: TestServer;
  before(async () => {
    ours = await startOurs();
  });
  after(async () => {
    await ours.close();
  });

  const idOf = async (c: RawClient): Promise<string> => /^:(\d+)/.exec(await ask(c, 'CLIENT', 'ID'))![1];
  const addrOf = async (c: RawClient): Promise<string> => / addr=(\S+)/.exec(await ask(c, 'CLIENT', 'INFO'))![1];

  it('by ID, by ADDR (old form), by LADDR, and the asking client itself with SKIPME no', async () => {
    const admin = await RawClient.connect(ours.port);
    const a = await RawClient.connect(ours.port);
    const b = await RawClient.connect(ours.port);
    const c = await RawClient.connect(ours.port);
    try {
      assert.equal(await ask(admin, 'CLIENT', 'KILL', 'ID', await idOf(a)), ':1\r\n');
      await a.untilClosed();
      assert.equal(await ask(admin, 'CLIENT', 'KILL', await addrOf(b)), '+OK\r\n');
      await b.untilClosed();
      assert.equal(await ask(admin, 'CLIENT', 'KILL', 'ADDR', await addrOf(c), 'ID', '999999'), ':0\r\n');
      assert.equal(await ask(admin, 'CLIENT', 'KILL', 'MAXAGE', '1000'), ':0\r\n');
      // Every client shares the listener's address: LADDR with SKIPME (default yes) kills the others.
      const laddr = / laddr=(\S+)/.exec(await ask(admin, 'CLIENT', 'INFO'))![1];
      assert.equal(await ask(admin, 'CLIENT', 'KILL', 'LADDR', laddr, 'USER', 'default'), ':1\r\n');
      await c.untilClosed();
      admin.write(resp('CLIENT', 'KILL', 'ID', await idOf(admin), 'SKIPME', 'no'));
      assert.equal(await admin.untilClosed(), ':1\r\n');
    } finally {
      for (const x of [admin, a, b, c]) x.destroy();
    }
  });

  it('CLIENT LIST shows a half-sent command in qbuf and the running command in argv-mem', async () => {
    const watcher = await RawClient.connect(ours.port);
    const sender = await RawClient.connect(ours.port);
    try {
      const id = await idOf(sender);
      const command = resp('SET', 'k', 'x'.repeat(5000));
      sender.write(command.subarray(0, 3000));
      let line = '';
      for (let i = 0; i < 100 && !/ qbuf=[1-9]/.test(line); i++) {
        line = (await ask(watcher, 'CLIENT', 'LIST')).split('\n').find((l) => l.includes(`id=${id} `)) ?? '';
      }
      const qbuf = Number(/ qbuf=(\d+)/.exec(line)![1]);
      assert.ok(qbuf > 0 && qbuf <= 3000, line);
      assert.match(line, / tot-mem=\d+ /);
      assert.equal(Number(/ tot-mem=(\d+)/.exec(line)![1]), qbuf + Number(/ argv-mem=(\d+)/.exec(line)![1]) + Number(/ omem=(\d+)/.exec(line)![1]));
      sender.write(command.subarray(3000));
      assert.equal(await sender.reply(), '+OK\r\n');
      // The asking client's own line counts its running command: "CLIENT" + "INFO".
      assert.match(await ask(watcher, 'CLIENT', 'INFO'), / qbuf=0 qbuf-free=0 argv-mem=10 multi-mem=0 .* omem=0 tot-mem=10 /);
    } finally {
      watcher.destroy();
      sender.destroy();
    }
  });
});
