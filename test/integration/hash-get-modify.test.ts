/**
 * HGETDEL and HGETEX (Redis 8) over real sockets, RESP2 and RESP3. redis-server 7.0 does not have
 * them, so the expected bytes are written out here, following Redis 8.0's t_hash.c (argument
 * order of checks, error texts, null for a missing field).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runScript, type Cmd } from '../helpers/compare.js';
import { startOurs, type TestServer } from '../helpers/servers.js';

const NULL2 = '$-1\r\n';
const NULL3 = '_\r\n';

function script(nil: string): [Cmd, string][] {
  return [
    [['HSET', 'h', 'a', '1', 'b', '2', 'c', '3'], ':3\r\n'],
    [['HGETDEL', 'h', 'FIELDS', '3', 'a', 'zz', 'a'], `*3\r\n$1\r\n1\r\n${nil}${nil}`],
    [['HLEN', 'h'], ':2\r\n'],
    [['HGETDEL', 'nokey', 'FIELDS', '2', 'a', 'b'], `*2\r\n${nil}${nil}`],
    [['HGETDEL', 'h', 'FIELD', '1', 'b'], '-ERR Mandatory argument FIELDS is missing or not at the right position\r\n'],
    [['HGETDEL', 'h', 'FIELDS', '0', 'b'], '-ERR Number of fields must be a positive integer\r\n'],
    [['HGETDEL', 'h', 'FIELDS', 'x', 'b'], '-ERR Number of fields must be a positive integer\r\n'],
    [['HGETDEL', 'h', 'FIELDS', '2', 'b'], '-ERR The `numfields` parameter must match the number of arguments\r\n'],
    [['HGETDEL', 'h', 'FIELDS', '1'], "-ERR wrong number of arguments for 'hgetdel' command\r\n"],
    [['HGETEX', 'h', 'EX', '100', 'FIELDS', '2', 'b', 'zz'], `*2\r\n$1\r\n2\r\n${nil}`],
    [['HTTL', 'h', 'FIELDS', '3', 'b', 'c', 'zz'], '*3\r\n:100\r\n:-1\r\n:-2\r\n'],
    [['HGETEX', 'h', 'PERSIST', 'FIELDS', '2', 'b', 'c'], '*2\r\n$1\r\n2\r\n$1\r\n3\r\n'],
    [['HTTL', 'h', 'FIELDS', '2', 'b', 'c'], '*2\r\n:-1\r\n:-1\r\n'],
    [['HGETEX', 'h', 'FIELDS', '1', 'c'], '*1\r\n$1\r\n3\r\n'],
    [['HGETEX', 'h', 'PX', '0', 'FIELDS', '2', 'c', 'c'], `*2\r\n$1\r\n3\r\n${nil}`],
    [['HEXISTS', 'h', 'c'], ':0\r\n'],
    [['HGETEX', 'h', 'EXAT', '1', 'FIELDS', '1', 'b'], '*1\r\n$1\r\n2\r\n'],
    [['HGETEX', 'nokey', 'EX', '10', 'FIELDS', '1', 'b'], `*1\r\n${nil}`],
    [['HGETEX', 'h', 'EX', '-1', 'FIELDS', '1', 'b'], '-ERR invalid expire time, must be >= 0\r\n'],
    [['HGETEX', 'h', 'EX', 'x', 'FIELDS', '1', 'b'], '-ERR value is not an integer or out of range\r\n'],
    [['HGETEX', 'h', 'PXAT', '70368744177664', 'FIELDS', '1', 'b'], "-ERR invalid expire time in 'hgetex' command\r\n"],
    [['HGETEX', 'h', 'EX', '10', 'FIELDS'], '-ERR Number of fields must be a positive integer\r\n'],
    [['HGETEX', 'h', 'FOO', 'FIELDS', '1', 'b'], '-ERR Mandatory argument FIELDS is missing or not at the right position\r\n'],
    [['HGETEX', 'h', 'PERSIST', 'FIELDS', '2', 'b'], '-ERR The `numfields` parameter must match the number of arguments\r\n'],
    [['HGETEX', 'h', 'FIELDS', '1'], "-ERR wrong number of arguments for 'hgetex' command\r\n"],
  ];
}

describe('HGETDEL and HGETEX (Redis 8 semantics)', () => {
  let ours: TestServer;
  before(async () => {
    ours = await startOurs();
  });
  after(async () => {
    await ours?.close();
  });
  for (const proto of [2, 3] as const) {
    it(`replies, RESP${proto}`, async () => {
      const steps = script(proto === 3 ? NULL3 : NULL2);
      const cmds: Cmd[] = steps.map(([c]) => c);
      const expected = steps.map(([, r]) => r);
      const actual = await runScript(ours.port, proto === 3 ? [['HELLO', '3'], ...cmds] : cmds);
      if (proto === 3) actual.shift();
      for (let i = 0; i < cmds.length; i++) assert.equal(actual[i], expected[i], cmds[i].join(' '));
    });
  }
});
