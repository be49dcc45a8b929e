/**
 * Rate limiters that keep their counters through Lua scripts: express-rate-limit with
 * rate-limit-redis (an Express app driven over HTTP), and Python's `limits` (the storage behind
 * Flask-Limiter) with its fixed-window strategies. Each scenario runs against a
 * real redis-server and against ours and must see the same answers.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import express from 'express';
import { rateLimit } from 'express-rate-limit';
import { RedisStore, type RedisReply } from 'rate-limit-redis';
import { Redis } from 'ioredis';
import { compareServersForSuite } from '../helpers/compare.js';

const run = promisify(execFile);

interface Hit {
  status: number;
  remaining: string | null;
  body: string;
}

/** Seven requests from one client to an app allowing five per minute: statuses and RateLimit headers. */
async function expressStory(port: number): Promise<{ hits: Hit[]; keys: string[]; ttlOk: boolean }> {
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  const app = express();
  app.use(
    rateLimit({
      windowMs: 60_000,
      limit: 5,
      standardHeaders: 'draft-6',
      legacyHeaders: false,
      store: new RedisStore({
        prefix: 'rl:',
        sendCommand: (command: string, ...args: string[]) => client.call(command, ...args) as Promise<RedisReply>,
      }),
    }),
  );
  app.get('/', (_req, res) => {
    res.send('hello');
  });
  const http = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => http.once('listening', () => resolve()));
  const { port: httpPort } = http.address() as AddressInfo;
  try {
    const hits: Hit[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await fetch(`http://127.0.0.1:${httpPort}/`);
      hits.push({ status: res.status, remaining: res.headers.get('ratelimit-remaining'), body: await res.text() });
    }
    const keys = (await client.keys('rl:*')).sort();
    const ttl = await client.pttl(keys[0] ?? 'none');
    return { hits, keys, ttlOk: ttl > 50_000 && ttl <= 60_000 };
  } finally {
    await new Promise((resolve) => http.close(resolve));
    client.disconnect();
  }
}

/**
 * `limits` (Flask-Limiter's storage): its fixed-window strategies (Flask-Limiter's default), 3 per
 * minute, then a reset. The moving window keeps its hits in a Redis list, a type this server does
 * not have (README, "Not supported, on purpose").
 */
const PY_LIMITS = `
import sys
from limits import parse, storage, strategies
port = sys.argv[1]
s = storage.RedisStorage(f"redis://127.0.0.1:{port}")
item = parse("3/minute")
out = []
for name, cls in (("fixed", strategies.FixedWindowRateLimiter), ("elastic", strategies.FixedWindowElasticExpiryRateLimiter)):
    lim = cls(s)
    out.append(name + " hits " + " ".join(str(lim.hit(item, "user", name)) for _ in range(5)))
    out.append(name + " test " + str(lim.test(item, "user", name)))
    reset, remaining = lim.get_window_stats(item, "user", name)
    out.append(name + " remaining " + str(remaining))
    lim.clear(item, "user", name)
    out.append(name + " after clear " + str(lim.hit(item, "user", name)))
print("\\n".join(out))
`;

describe('rate limiters built on scripts', () => {
  const servers = compareServersForSuite();

  it('express-rate-limit with rate-limit-redis: the sixth request is refused, as with redis-server', async () => {
    const expected = await expressStory(servers.redis.port);
    const actual = await expressStory(servers.ours.port);
    assert.deepEqual(
      expected.hits.map((h) => h.status),
      [200, 200, 200, 200, 200, 429, 429],
      'the scenario itself behaves as intended on redis-server',
    );
    assert.deepEqual(actual.hits, expected.hits);
    assert.deepEqual(actual.keys, expected.keys);
    assert.equal(actual.ttlOk, true, 'the window key expires with the window');
  });

  it('Flask-Limiter\'s storage (limits): fixed windows answer as with redis-server', async () => {
    const story = async (port: number): Promise<string> =>
      (await run('/usr/bin/python3', ['-c', PY_LIMITS, String(port)], { timeout: 30_000 })).stdout.trim();
    const expected = await story(servers.redis.port);
    assert.match(expected, /fixed hits True True True False False/);
    assert.equal(await story(servers.ours.port), expected);
  });
});
