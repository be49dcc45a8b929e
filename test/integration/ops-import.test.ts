/**
 * `blobasaur import`: a live redis-server copied into this server through the real CLI (DUMP +
 * RESTORE, and plain reads where DUMP is renamed away), then every key compared through clients.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { MAIN_JS, startOurs, startRedis, type RedisServer, type TestServer } from '../helpers/servers.js';
import { importFromRedis, type ImportProgress } from '../../src/tools/import.js';

const run = promisify(execFile);

/** Runs `blobasaur import …` and returns its exit code and output (never throws on exit 1). */
async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [MAIN_JS, 'import', ...args], { timeout: 60_000, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const BIN_KEY = Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x41]);
const BIN_VALUE = Buffer.from([0x80, 0x00, 0x01, 0xfe, 0x0a]);

/** Strings, hashes (listpack, hashtable), TTLs, binary names and values, and a list to be skipped. */
async function fill(r: Redis): Promise<void> {
  await r.set('plain', 'hello');
  await r.set('counter', '12345');
  await r.set('long', 'compressible '.repeat(2000));
  await r.set('ttl', 'soon', 'PX', 600_000);
  await r.set(BIN_KEY, BIN_VALUE);
  await r.hset('session:1', 'user', 'ada', 'visits', '42');
  const many: string[] = [];
  for (let i = 0; i < 700; i++) many.push(`f${i}`, `value ${i}`);
  await r.hset('session:big', ...many);
  await r.hset('hashttl', 'a', '1');
  await r.pexpire('hashttl', 600_000);
  for (let i = 0; i < 30; i++) await r.set(`bulk:${i}`, `v${i}`);
  await r.rpush('queue', 'a', 'b');
  await r.sadd('tags', 'x');
}

/** Every key of the source except the skipped ones must read the same here. */
async function compare(r: Redis, o: Redis, match = '*'): Promise<number> {
  let compared = 0;
  for (const key of await r.keysBuffer(match)) {
    const type = await r.type(key);
    if (type === 'list' || type === 'set') {
      assert.equal(await o.exists(key), 0, `${key.toString('latin1')} (a ${type}) must be skipped`);
      continue;
    }
    assert.equal(await o.type(key), type, key.toString('latin1'));
    if (type === 'string') {
      assert.deepEqual(await o.getBuffer(key), await r.getBuffer(key));
      const [rt, ot] = [await r.pttl(key), await o.pttl(key)];
      if (rt < 0) assert.equal(ot, rt);
      else assert.ok(Math.abs(ot - rt) < 5_000, `pttl ${ot} vs ${rt}`);
    } else {
      assert.deepEqual(await o.hgetall(key), await r.hgetall(key));
      const rt = await r.pttl(key);
      if (rt > 0) {
        const fields = Object.keys(await r.hgetall(key));
        const ot = (await o.call('HPTTL', key, 'FIELDS', String(fields.length), ...fields)) as number[];
        for (const t of ot) assert.ok(Math.abs(t - rt) < 5_000, `field pttl ${t} vs ${rt}`);
      }
    }
    compared++;
  }
  return compared;
}

describe('blobasaur import from a live redis-server', () => {
  let ours: TestServer;
  let redis: RedisServer;
  let plainRedis: RedisServer;
  let o: Redis;
  let r: Redis;
  let pr: Redis;
  before(async () => {
    ours = await startOurs({ requirepass: 'ourpw' });
    redis = await startRedis(['--requirepass', 'srcpw']);
    // A source that refuses DUMP, as managed services do.
    plainRedis = await startRedis(['--rename-command', 'DUMP', '""']);
    o = new Redis({ port: ours.port, host: '127.0.0.1', password: 'ourpw' });
    r = new Redis({ port: redis.port, host: '127.0.0.1', password: 'srcpw' });
    pr = new Redis({ port: plainRedis.port, host: '127.0.0.1' });
    await fill(r);
    await fill(pr);
  });
  after(async () => {
    o.disconnect();
    r.disconnect();
    pr.disconnect();
    await ours.close();
    await redis.stop();
    await plainRedis.stop();
  });

  it('copies strings and hashes with TTLs and binary keys, skips the list and the set, and reports it', async () => {
    await o.flushall();
    const res = await cli(
      ['--from', `127.0.0.1:${redis.port}`, '--to', `127.0.0.1:${ours.port}`, '--to-password', 'ourpw', '--count', '7'],
      { BLOBASAUR_IMPORT_FROM_PASSWORD: 'srcpw' },
    );
    assert.equal(res.code, 0, res.stderr + res.stdout);
    assert.match(res.stdout, /^import from 127\.0\.0\.1:\d+: 38 keys copied \([\d.]+ MiB of DUMP payloads\) in [\d.]+ s using DUMP\/RESTORE; 40 scanned; skipped 2 \((list 1, set 1|set 1, list 1)\); failed 0\n$/);
    // Not a terminal: plain progress lines against the source's DBSIZE (40), at most one a second
    // plus the first and the last.
    const lines = res.stderr.trim().split('\n');
    assert.ok(lines.length >= 2, res.stderr);
    for (const l of lines) assert.match(l, /^import: \d+\/40 keys \(\d+%\), \d+ copied, \d+ skipped, 0 failed, [\d.]+ MiB$/);
    assert.match(lines[lines.length - 1], /^import: 40\/40 keys \(100%\), 38 copied, 2 skipped, 0 failed, [\d.]+ MiB$/);
    assert.equal(await compare(r, o), 38);
  });

  it('without --replace an existing key fails as BUSYKEY (exit 1); with it, it is overwritten', async () => {
    await o.flushall();
    await o.set('plain', 'mine');
    const base = ['--from', `127.0.0.1:${redis.port}`, '--from-password', 'srcpw', '--to', `127.0.0.1:${ours.port}`, '--to-password', 'ourpw', '--match', 'p*'];
    const refused = await cli(base);
    assert.equal(refused.code, 1);
    assert.match(refused.stdout, /1 scanned.*failed 1\n {2}failed: plain: BUSYKEY Target key name already exists\.\n$/s);
    assert.equal(await o.get('plain'), 'mine');
    const replaced = await cli([...base, '--replace']);
    assert.equal(replaced.code, 0, replaced.stdout);
    assert.equal(await o.get('plain'), 'hello');
  });

  it('falls back to GET/HGETALL when the source refuses DUMP, with the same result', async () => {
    await o.flushall();
    const events: ImportProgress[] = [];
    const s = await importFromRedis({
      from: { host: '127.0.0.1', port: plainRedis.port },
      to: { host: '127.0.0.1', port: ours.port, password: 'ourpw' },
      count: 5,
      progress: (p) => events.push(p),
    });
    assert.equal(s.mode, 'plain');
    assert.deepEqual([s.copied, s.skipped, s.failed, s.scanned], [38, 2, 0, 40]);
    assert.deepEqual(s.skippedByType, { list: 1, set: 1 });
    assert.equal(events.at(-1)?.done, true);
    assert.ok(events.length >= 3, 'progress after every batch');
    assert.equal(await compare(pr, o), 38);
  });

  it('fails clearly on a wrong source password or an unreachable target', async () => {
    const wrong = await cli(['--from', `127.0.0.1:${redis.port}`, '--from-password', 'nope', '--to', `127.0.0.1:${ours.port}`]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /^blobasaur import: source 127\.0\.0\.1:\d+ refused AUTH: WRONGPASS/);
    const usage = await cli(['--to', '127.0.0.1:1']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--from HOST:PORT is required/);
  });
});
