/** SETBIT, GETBIT, BITCOUNT, BITPOS against a real redis-server, byte for byte, RESP2 and RESP3. */
import { describe } from 'node:test';
import { compareServersForSuite, itMatchesRedis, type Cmd } from '../helpers/compare.js';
import { bothProtocols } from '../helpers/compare-resp3.js';

const SCRIPTS: Record<string, Cmd[]> = {
  'SETBIT and GETBIT': [
    ['SETBIT', 'b', '7', '1'],
    ['GET', 'b'],
    ['SETBIT', 'b', '7', '1'],
    ['SETBIT', 'b', '7', '0'],
    ['SETBIT', 'b', '0', '1'],
    ['SETBIT', 'b', '100', '1'],
    ['STRLEN', 'b'],
    ['GET', 'b'],
    ['GETBIT', 'b', '0'],
    ['GETBIT', 'b', '1'],
    ['GETBIT', 'b', '100'],
    ['GETBIT', 'b', '1000000'],
    ['GETBIT', 'nokey', '5'],
    ['SET', 's', 'ab'],
    ['SETBIT', 's', '6', '1'],
    ['GET', 's'],
    ['SETBIT', 's', '20', '0'],
    ['GET', 's'],
  ],
  'SETBIT and GETBIT errors': [
    ['SETBIT', 'b', '-1', '1'],
    ['SETBIT', 'b', 'x', '1'],
    ['SETBIT', 'b', '4294967296', '1'],
    ['SETBIT', 'b', '9223372036854775807', '1'],
    ['SETBIT', 'b', '1', '2'],
    ['SETBIT', 'b', '1', '-1'],
    ['SETBIT', 'b', '1', 'on'],
    ['SETBIT', 'b', 'x', 'on'],
    ['GETBIT', 'b', '-1'],
    ['GETBIT', 'b', '4294967296'],
    ['GETBIT', 'b', '4294967295'],
    ['EXISTS', 'b'],
    ['SETBIT', 'b', '1'],
    ['GETBIT', 'b'],
    ['GETBIT', 'b', '1', '2'],
  ],
  'SETBIT keeps the TTL': [
    ['SET', 'k', 'a', 'EX', '100'],
    ['SETBIT', 'k', '15', '1'],
    ['TTL', 'k'],
    ['GET', 'k'],
  ],
  'BITCOUNT': [
    ['SET', 'k', 'foobar'],
    ['BITCOUNT', 'k'],
    ['BITCOUNT', 'k', '0', '0'],
    ['BITCOUNT', 'k', '1', '1'],
    ['BITCOUNT', 'k', '1', '1', 'BYTE'],
    ['BITCOUNT', 'k', '5', '30', 'BIT'],
    ['BITCOUNT', 'k', '5', '30', 'bit'],
    ['BITCOUNT', 'k', '-1', '-1'],
    ['BITCOUNT', 'k', '-2', '-1', 'BIT'],
    ['BITCOUNT', 'k', '-1', '-2'],
    ['BITCOUNT', 'k', '2', '1'],
    ['BITCOUNT', 'k', '0', '100'],
    ['BITCOUNT', 'k', '-100', '-90'],
    ['BITCOUNT', 'k', '3', '3', 'BIT'],
    ['BITCOUNT', 'k', '0', '-1', 'BIT'],
    ['BITCOUNT', 'k', '0', '9223372036854775807'],
    ['BITCOUNT', 'k', '-9223372036854775808', '-1'],
    ['BITCOUNT', 'k', '0'],
    ['BITCOUNT', 'k', '0', '1', 'WORD'],
    ['BITCOUNT', 'k', 'a', '1'],
    ['BITCOUNT', 'k', '0', 'b'],
    ['BITCOUNT', 'k', '0', '1', 'BIT', 'x'],
    ['BITCOUNT', 'nokey'],
    ['BITCOUNT', 'nokey', '0'],
    ['BITCOUNT', 'nokey', 'a', 'b', 'c'],
    ['SET', 'e', ''],
    ['BITCOUNT', 'e'],
    ['BITCOUNT', 'e', '0', '-1'],
    ['BITCOUNT'],
  ],
  'BITPOS': [
    ['SET', 'k', Buffer.from([0xff, 0xf0, 0x00])],
    ['BITPOS', 'k', '0'],
    ['BITPOS', 'k', '1'],
    ['BITPOS', 'k', '1', '2'],
    ['BITPOS', 'k', '0', '0', '0'],
    ['BITPOS', 'k', '0', '0', '1'],
    ['BITPOS', 'k', '1', '2', '-1', 'BYTE'],
    ['BITPOS', 'k', '1', '7', '15', 'BIT'],
    ['BITPOS', 'k', '0', '7', '15', 'BIT'],
    ['BITPOS', 'k', '0', '3', '7', 'BIT'],
    ['BITPOS', 'k', '1', '13', '20', 'BIT'],
    ['BITPOS', 'k', '0', '1', '6', 'BIT'],
    ['BITPOS', 'k', '1', '-1', '-1', 'BIT'],
    ['BITPOS', 'k', '0', '-3', '-1', 'BIT'],
    ['BITPOS', 'k', '1', '5'],
    ['BITPOS', 'k', '0', '5'],
    ['BITPOS', 'k', '0', '2', '1'],
    ['BITPOS', 'k', '1', '0', '0', 'bit'],
    ['BITPOS', 'k', '0', '9', '9', 'BIT'],
    ['BITPOS', 'k', '0', '12', 'BIT'],
    ['SET', 'ones', Buffer.from([0xff, 0xff])],
    ['BITPOS', 'ones', '0'],
    ['BITPOS', 'ones', '0', '0'],
    ['BITPOS', 'ones', '0', '0', '-1'],
    ['BITPOS', 'ones', '0', '3', '12', 'BIT'],
    ['BITPOS', 'ones', '1', '3', '12', 'BIT'],
    ['SET', 'zeros', Buffer.alloc(3)],
    ['BITPOS', 'zeros', '1'],
    ['BITPOS', 'zeros', '0'],
    ['BITPOS', 'zeros', '1', '1', '2', 'BIT'],
    ['SET', 'e', ''],
    ['BITPOS', 'e', '0'],
    ['BITPOS', 'e', '1'],
    ['BITPOS', 'nokey', '0'],
    ['BITPOS', 'nokey', '1'],
    ['BITPOS', 'nokey', '1', 'a', 'b', 'c'],
  ],
  'BITPOS errors': [
    ['SET', 'k', 'ab'],
    ['BITPOS', 'k', '2'],
    ['BITPOS', 'k', 'x'],
    ['BITPOS', 'nokey', '2'],
    ['BITPOS', 'k', '1', 'a'],
    ['BITPOS', 'k', '1', '0', 'b'],
    ['BITPOS', 'k', '1', '0', '1', 'WORD'],
    ['BITPOS', 'k', '1', 'a', '1', 'WORD'],
    ['BITPOS', 'k', '1', '0', 'b', 'WORD'],
    ['BITPOS', 'k', '1', '0', '1', 'BIT', 'x'],
    ['BITPOS', 'k'],
  ],
};

/** Deterministic ranges over a few bitmaps: every edge-mask path of BITPOS/BITCOUNT, reproducibly. */
function generated(): Cmd[] {
  let seed = 12345;
  const next = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const values = [Buffer.from([0x00, 0x0f, 0xff, 0xf0, 0x81]), Buffer.from([0xff, 0xff, 0xfe]), Buffer.from([0x00, 0x00, 0x01]), Buffer.from([0x5a])];
  const cmds: Cmd[] = [];
  values.forEach((v, i) => cmds.push(['SET', `v${i}`, v]));
  for (let n = 0; n < 240; n++) {
    const key = `v${next(values.length)}`;
    const start = String(next(50) - 25);
    const end = String(next(50) - 25);
    const unit = ['BIT', 'BYTE'][next(2)];
    const form = next(4);
    if (form === 0) cmds.push(['BITCOUNT', key, start, end, unit]);
    else if (form === 1) cmds.push(['BITPOS', key, String(next(2)), start, end, unit]);
    else if (form === 2) cmds.push(['BITPOS', key, String(next(2)), start]);
    else cmds.push(['BITPOS', key, String(next(2)), start, end]);
  }
  return cmds;
}
SCRIPTS['BITPOS and BITCOUNT over generated ranges'] = generated();

describe('bitmaps: replies match redis-server (RESP2 and RESP3)', () => {
  const servers = compareServersForSuite();
  itMatchesRedis(servers.ports, bothProtocols(SCRIPTS));
});
