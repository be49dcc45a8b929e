/**
 * LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN], ported from Redis 7.0 (t_string.c):
 * the same dynamic-programming table and the same walk back through it, so the string and the
 * match ranges are the ones Redis returns.
 *
 * The table has (len1+1)×(len2+1) cells and filling it runs on the event loop. Redis bounds only
 * its memory (4 bytes a cell within proto-max-bulk-len); we also bound the work, so one LCS
 * cannot stall every other client: at most LCS_MAX_CELLS cells (25–50 ms measured for two 2047-byte
 * values on the 2-core dev machine), else the error
 * LCS_TOO_LARGE. Two 2 KB values fit; compare larger blobs outside the server.
 */
import { ErrorReply, RespMap, type Reply } from '../protocol/reply.js';
import { keyword, NOT_INTEGER_TEXT, parseInt64 } from './args.js';
import { defineCommand, keyAt } from './define.js';
import { SYNTAX_ERROR } from './errors.js';
import type { CommandSpec, Handler } from './types.js';
import type { PendingValue } from '../storage/keyspace.js';

/** The largest table LCS builds: (len1+1)×(len2+1) cells. */
export const LCS_MAX_CELLS = 4 * 1024 * 1024;
export const LCS_TOO_LARGE = new ErrorReply(
  `ERR LCS input too large: (len1+1)*(len2+1) exceeds ${LCS_MAX_CELLS} (this server's limit on LCS work per command)`,
);

interface LcsOptions {
  len: boolean;
  idx: boolean;
  withMatchLen: boolean;
  minMatchLen: number;
}

function parseOptions(args: Buffer[]): LcsOptions | ErrorReply {
  const o: LcsOptions = { len: false, idx: false, withMatchLen: false, minMatchLen: 0 };
  for (let j = 3; j < args.length; j++) {
    const opt = keyword(args[j]);
    const more = args.length - 1 - j;
    if (opt === 'idx') o.idx = true;
    else if (opt === 'len') o.len = true;
    else if (opt === 'withmatchlen') o.withMatchLen = true;
    else if (opt === 'minmatchlen' && more > 0) {
      const n = parseInt64(args[++j]);
      if (n === null) return new ErrorReply(NOT_INTEGER_TEXT);
      o.minMatchLen = n < 0n ? 0 : Number(n);
    } else return SYNTAX_ERROR;
  }
  if (o.len && o.idx) return new ErrorReply('ERR If you want both the length and indexes, please just use IDX.');
  return o;
}

/** The LCS reply for two values, as Redis builds it. */
export function lcsReply(a: Buffer, b: Buffer, o: LcsOptions, maxValueBytes: number, proto: 2 | 3): Reply {
  const alen = a.length;
  const blen = b.length;
  const cells = (alen + 1) * (blen + 1);
  if (cells * 4 > maxValueBytes) return new ErrorReply('ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len');
  if (cells > LCS_MAX_CELLS) return LCS_TOO_LARGE;
  // Within the cap the shorter value has under 2048 bytes, so every length fits 16 bits.
  const row = blen + 1;
  const t = new Uint16Array(cells);
  for (let i = 1; i <= alen; i++) {
    const ai = a[i - 1];
    const base = i * row;
    const prev = base - row;
    for (let j = 1; j <= blen; j++) {
      if (ai === b[j - 1]) t[base + j] = t[prev + j - 1] + 1;
      else {
        const up = t[prev + j];
        const left = t[base + j - 1];
        t[base + j] = up > left ? up : left;
      }
    }
  }
  const total = t[alen * row + blen];
  if (o.len && !o.idx) return total;

  const result = Buffer.alloc(total);
  const matches: Reply[] = [];
  let idx = total;
  let aStart = alen; // alen: no range open
  let aEnd = 0;
  let bStart = 0;
  let bEnd = 0;
  let i = alen;
  let j = blen;
  while (i > 0 && j > 0) {
    let emit = false;
    if (a[i - 1] === b[j - 1]) {
      result[idx - 1] = a[i - 1];
      if (aStart === alen) {
        aStart = i - 1;
        aEnd = i - 1;
        bStart = j - 1;
        bEnd = j - 1;
      } else if (aStart === i && bStart === j) {
        aStart--;
        bStart--;
      } else {
        emit = true;
      }
      if (aStart === 0 || bStart === 0) emit = true;
      idx--;
      i--;
      j--;
    } else {
      if (t[(i - 1) * row + j] > t[i * row + j - 1]) i--;
      else j--;
      if (aStart !== alen) emit = true;
    }
    // Unsigned as in Redis: a range never opened (aStart = alen) wraps, and is never emitted.
    const matchLen = (aEnd - aStart + 1) >>> 0;
    if (emit) {
      if (o.minMatchLen === 0 || matchLen >= o.minMatchLen) {
        const m: Reply[] = [[aStart, aEnd], [bStart, bEnd]];
        if (o.withMatchLen) m.push(matchLen);
        matches.push(m);
      }
      aStart = alen;
    }
  }
  if (!o.idx) return result;
  const entries: [Reply, Reply][] = [
    ['matches', matches],
    ['len', total],
  ];
  return proto === 3 ? new RespMap(entries) : entries.flat();
}

const lcs: Handler = ({ ks, now, client }, args) => {
  const a = ks.get(null, args[1], now);
  const b = ks.get(null, args[2], now);
  const finish = (va: Buffer | null, vb: Buffer | null): Reply => {
    const o = parseOptions(args);
    if (o instanceof ErrorReply) return o;
    return lcsReply(va ?? EMPTY, vb ?? EMPTY, o, ks.maxValueBytes, client.proto === 3 ? 3 : 2);
  };
  if (a instanceof Promise || b instanceof Promise) {
    return Promise.all([a, b] as (PendingValue | null)[]).then(([va, vb]) => finish(va, vb));
  }
  return finish(a, b);
};

const EMPTY = Buffer.alloc(0);

export const lcsCommands: CommandSpec[] = [
  defineCommand({
    name: 'lcs',
    group: 'string',
    summary: 'Find longest common substring',
    complexity: 'O(N*M) where N and M are the lengths of s1 and s2, respectively',
    since: '7.0.0',
    arity: -3,
    flags: ['readonly'],
    categories: ['string'],
    keys: [keyAt(1, ['RO', 'access'], { lastkey: 1 })],
    handler: lcs,
  }),
];
