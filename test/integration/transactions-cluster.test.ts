/** Transactions in cluster mode: every key of a transaction in one slot, or CROSSSLOT, as Redis Cluster. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runScript, type Cmd } from '../helpers/compare.js';
import { RawClient, resp } from '../helpers/raw.js';
import { freePort, startOurs, startRedis, type RedisServer, type TestServer } from '../helpers/servers.js';

const SCRIPTS: Record<string, Cmd[]> = {
  'keys of different slots in one transaction: EXEC answers CROSSSLOT and runs nothing': [
    ['MULTI'], ['SET', 'a', '1'], ['SET', 'b', '2'], ['EXEC'], ['GET', 'a'], ['EXEC'],
  ],
  'keys sharing a hash tag run': [['MULTI'], ['SET', '{t}a', '1'], ['SET', '{t}b', '2'], ['MGET', '{t}a', '{t}b'], ['PING'], ['EXEC']],
  'a command whose own keys cross slots is refused while queuing and aborts EXEC': [
    ['MULTI'], ['MSET', 'a', '1', 'b', '2'], ['SET', 'a', '1'], ['EXEC'], ['GET', 'a'],
  ],
  'a key of an unserved slot is refused while queuing': [['MULTI'], ['SET', 'b', '1'], ['EXEC']],
  'WATCH of keys in two slots answers CROSSSLOT': [['WATCH', 'a', 'b'], ['WATCH', '{t}a', '{t}b'], ['UNWATCH']],
  'a transaction without keys runs': [['MULTI'], ['PING'], ['ECHO', 'x'], ['EXEC']],
};

describe('transactions in cluster mode against redis-server --cluster-enabled', () => {
  let ours: TestServer;
  let redis: RedisServer;
  const scripts = (serveAll: boolean): Record<string, Cmd[]> =>
    Object.fromEntries(Object.entries(SCRIPTS).filter(([name]) => serveAll !== name.includes('unserved')));

  for (const serveAll of [true, false]) {
    describe(serveAll ? 'every slot served' : 'slot of "b" (3300) not served', () => {
      before(async () => {
        const ranges = serveAll ? [[0, 16383]] : [[0, 3000], [4000, 16383]];
        redis = await startRedis([
          '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(await freePort()),
          '--cluster-require-full-coverage', 'no', '--cluster-node-timeout', '500',
        ]);
        ours = await startOurs({
          cluster: { enabled: true, node_id: 'node-a', port: await freePort(), slot_ranges: ranges.map(([start, end]) => ({ start, end })) },
        });
        const r = await RawClient.connect(redis.port);
        for (const [start, end] of ranges) {
          r.write(resp('CLUSTER', 'ADDSLOTSRANGE', String(start), String(end)));
          assert.equal(await r.reply(), '+OK\r\n');
        }
        const deadline = Date.now() + 5000;
        for (;;) {
          r.write(resp('GET', '{t}a'));
          if ((await r.reply()) === '$-1\r\n') break;
          if (Date.now() > deadline) throw new Error('redis-server cluster never became ready');
          await new Promise((res) => setTimeout(res, 50));
        }
        r.destroy();
      });
      after(async () => {
        await ours?.close();
        await redis?.stop();
      });

      for (const [name, cmds] of Object.entries(scripts(serveAll))) {
        for (const hello of [false, true]) {
          it(`${name} (RESP${hello ? 3 : 2}): replies match redis-server`, async () => {
            const script: Cmd[] = hello ? [['HELLO', '3'], ...cmds] : cmds;
            // FLUSHALL (runScript's first command) is keyless, so it runs in cluster mode too.
            const expected = await runScript(redis.port, script);
            const actual = await runScript(ours.port, script);
            for (let i = 0; i < script.length; i++) assert.equal(actual[i], expected[i], `reply to ${script[i].map(String).join(' ')}`);
          });
        }
      }
    });
  }
});
