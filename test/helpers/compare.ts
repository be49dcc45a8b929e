/** Runs command scripts against a server over a raw socket, for byte-for-byte comparison with Redis. */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, replyEnd, resp } from './raw.js';
import { startOurs, startRedis, type RedisServer, type TestServer } from './servers.js';

export type Cmd = (string | Buffer)[];

/** Replies that legitimately differ (ids, versions) are masked before comparison. */
export function normalize(reply: string): string {
  return reply
    .replace(/\$\d+\r\nversion\r\n\$\d+\r\n[0-9.]+\r\n/, '$N\r\nversion\r\n$N\r\nX\r\n')
    .replace(/\r\nid\r\n:\d+\r\n/, '\r\nid\r\n:N\r\n');
}

/** An array reply with its elements sorted, for commands whose order Redis leaves unspecified. */
export function sortedArray(reply: string): string {
  const buf = Buffer.from(reply, 'latin1');
  const head = buf.indexOf('\r\n');
  if (buf[0] !== 0x2a || Number(buf.subarray(1, head).toString()) <= 0) return reply;
  const items: string[] = [];
  let p = head + 2;
  while (p < buf.length) {
    const end = replyEnd(buf, p);
    items.push(buf.subarray(p, end).toString('latin1'));
    p = end;
  }
  return buf.subarray(0, head + 2).toString('latin1') + items.sort().join('');
}

/** Runs `cmds` on an emptied keyspace; commands listed in `unordered` get their array replies sorted. */
export async function runScript(port: number, cmds: Cmd[], unordered: ReadonlySet<string> = new Set()): Promise<string[]> {
  const c = await RawClient.connect(port);
  try {
    c.write(resp('FLUSHALL'));
    await c.reply();
    const out: string[] = [];
    for (const cmd of cmds) {
      c.write(resp(...cmd));
      const reply = normalize(await c.reply());
      out.push(unordered.has(String(cmd[0]).toLowerCase()) ? sortedArray(reply) : reply);
    }
    return out;
  } finally {
    c.destroy();
  }
}

/**
 * Registers one test per script: the same commands against our server and redis-server, compared
 * reply by reply. `ports` is read when the tests run (the servers start in a `before` hook).
 */
export function itMatchesRedis(
  ports: () => { ours: number; redis: number },
  scripts: Record<string, Cmd[]>,
  unordered: ReadonlySet<string> = new Set(),
): void {
  for (const [name, cmds] of Object.entries(scripts)) {
    it(`${name}: replies match redis-server`, async () => {
      const { ours, redis } = ports();
      const expected = await runScript(redis, cmds, unordered);
      const actual = await runScript(ours, cmds, unordered);
      for (let i = 0; i < cmds.length; i++) {
        assert.equal(actual[i], expected[i], `reply to ${cmds[i].map(String).join(' ').slice(0, 60)}`);
      }
    });
  }
}

/**
 * Starts our server and a redis-server before the enclosing suite's tests and stops both after it;
 * the servers are read through the returned getters once the tests run.
 */
export function compareServersForSuite(): { readonly ours: TestServer; readonly redis: RedisServer; ports(): { ours: number; redis: number } } {
  let ours: TestServer | undefined;
  let redis: RedisServer | undefined;
  before(async () => {
    ours = await startOurs();
    redis = await startRedis();
  });
  after(async () => {
    await ours?.close();
    await redis?.stop();
  });
  const started = <T>(s: T | undefined): T => {
    if (s === undefined) throw new Error('the servers start in the suite\'s before hook');
    return s;
  };
  return {
    get ours() {
      return started(ours);
    },
    get redis() {
      return started(redis);
    },
    ports: () => ({ ours: started(ours).port, redis: started(redis).port }),
  };
}
