/** GETSET, SUBSTR, COPY and LCS against a real redis-server, byte for byte, RESP2 and RESP3. */
import { describe } from 'node:test';
import { compareServersForSuite, itMatchesRedis, type Cmd } from '../helpers/compare.js';
import { bothProtocols } from '../helpers/compare-resp3.js';

const SCRIPTS: Record<string, Cmd[]> = {
  'GETSET': [
    ['GETSET', 'k', 'a'],
    ['GETSET', 'k', 'b'],
    ['GET', 'k'],
    ['SET', 't', 'v', 'EX', '100'],
    ['GETSET', 't', 'w'],
    ['TTL', 't'],
    ['GETSET', 'k'],
    ['GETSET', 'k', 'a', 'b'],
  ],
  'SUBSTR': [
    ['SET', 'k', 'Hello World'],
    ['SUBSTR', 'k', '0', '4'],
    ['SUBSTR', 'k', '-5', '-1'],
    ['SUBSTR', 'k', '6', '100'],
    ['SUBSTR', 'k', '5', '2'],
    ['SUBSTR', 'k', '-1', '-5'],
    ['SUBSTR', 'nokey', '0', '1'],
    ['SUBSTR', 'k', 'a', '1'],
    ['SUBSTR', 'k', '0'],
  ],
  'COPY': [
    ['SET', 'a', 'v', 'EX', '100'],
    ['COPY', 'a', 'b'],
    ['GET', 'b'],
    ['TTL', 'b'],
    ['SET', 'c', 'other'],
    ['COPY', 'a', 'c'],
    ['GET', 'c'],
    ['COPY', 'a', 'c', 'REPLACE'],
    ['GET', 'c'],
    ['TTL', 'c'],
    ['COPY', 'nokey', 'd'],
    ['EXISTS', 'd'],
    ['COPY', 'a', 'a'],
    ['COPY', 'a', 'e', 'DB', '0'],
    ['COPY', 'a', 'f', 'db', '0', 'replace'],
    ['COPY', 'a', 'g', 'DB', '16'],
    ['COPY', 'a', 'g', 'DB', '-1'],
    ['COPY', 'a', 'g', 'DB', 'x'],
    ['COPY', 'a', 'g', 'DB', '99999999999'],
    ['COPY', 'a', 'g', 'DB'],
    ['COPY', 'a', 'g', 'NOPE'],
    ['COPY', 'a', 'a', 'BAD'],
    ['COPY', 'a', 'a', 'DB', '16'],
    ['EXISTS', 'g'],
    ['SET', 'p', 'x'],
    ['COPY', 'p', 'q'],
    ['TTL', 'q'],
    ['COPY', 'a'],
  ],
  'LCS': [
    ['MSET', 'key1', 'ohmytext', 'key2', 'mynewtext'],
    ['LCS', 'key1', 'key2'],
    ['LCS', 'key1', 'key2', 'LEN'],
    ['LCS', 'key1', 'key2', 'IDX'],
    ['LCS', 'key1', 'key2', 'IDX', 'MINMATCHLEN', '4'],
    ['LCS', 'key1', 'key2', 'IDX', 'MINMATCHLEN', '4', 'WITHMATCHLEN'],
    ['LCS', 'key1', 'key2', 'IDX', 'WITHMATCHLEN'],
    ['LCS', 'key1', 'key2', 'idx', 'minmatchlen', '-5'],
    ['LCS', 'key1', 'key2', 'WITHMATCHLEN'],
    ['LCS', 'key1', 'key2', 'LEN', 'WITHMATCHLEN'],
    ['LCS', 'key1', 'key2', 'LEN', 'IDX'],
    ['LCS', 'key1', 'key2', 'MINMATCHLEN'],
    ['LCS', 'key1', 'key2', 'MINMATCHLEN', 'x'],
    ['LCS', 'key1', 'key2', 'FOO'],
    ['LCS', 'key1', 'nokey'],
    ['LCS', 'nokey', 'nokey2', 'IDX'],
    ['LCS', 'key1', 'key1', 'IDX', 'WITHMATCHLEN'],
    ['MSET', 'x', 'ACCGGTCGAGTGCGCGGAAGCCGGCCGAA', 'y', 'GTCGTTCGGAATGCCGTTGCTCTGTAAA'],
    ['LCS', 'x', 'y'],
    ['LCS', 'x', 'y', 'IDX', 'WITHMATCHLEN'],
    ['LCS', 'y', 'x', 'IDX', 'MINMATCHLEN', '2'],
    ['LCS', 'key1'],
  ],
};

/** Deterministic pairs over a small alphabet: many ties in the table, so the walk back matters. */
function generatedLcs(): Cmd[] {
  let seed = 777;
  const next = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const word = (): string => Array.from({ length: 1 + next(30) }, () => 'abc'[next(3)]).join('');
  const cmds: Cmd[] = [];
  for (let n = 0; n < 30; n++) {
    cmds.push(['MSET', 'p', word(), 'q', word()]);
    cmds.push(['LCS', 'p', 'q']);
    cmds.push(['LCS', 'p', 'q', 'IDX', 'WITHMATCHLEN', 'MINMATCHLEN', String(next(3))]);
  }
  return cmds;
}
SCRIPTS['LCS over generated pairs'] = generatedLcs();

describe('GETSET, SUBSTR, COPY, LCS: replies match redis-server (RESP2 and RESP3)', () => {
  const servers = compareServersForSuite();
  itMatchesRedis(servers.ports, bothProtocols(SCRIPTS));
});
