import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { globMatch } from '../../src/commands/glob.js';

const m = (p: string, s: string): boolean => globMatch(Buffer.from(p), Buffer.from(s));

test('glob: Redis stringmatchlen rules', () => {
  assert.equal(m('*', ''), true);
  assert.equal(m('*', 'anything'), true);
  assert.equal(m('**', ''), false, 'only a lone * matches the empty name (KEYS ** in redis-server)');
  assert.equal(m('', ''), true);
  assert.equal(m('h?llo', 'hello'), true);
  assert.equal(m('h?llo', 'hllo'), false);
  assert.equal(m('h*llo', 'heeeello'), true);
  assert.equal(m('h[ae]llo', 'hallo'), true);
  assert.equal(m('h[ae]llo', 'hillo'), false);
  assert.equal(m('h[^e]llo', 'hallo'), true);
  assert.equal(m('h[^e]llo', 'hello'), false);
  assert.equal(m('h[a-b]llo', 'hbllo'), true);
  assert.equal(m('h[b-a]llo', 'hallo'), true, 'reversed ranges are swapped');
  assert.equal(m('h\\*llo', 'h*llo'), true);
  assert.equal(m('h\\*llo', 'hello'), false);
  assert.equal(m('k\\[x\\]', 'k[x]'), true);
  assert.equal(m('a*b*c', 'aXXbYYc'), true);
  assert.equal(m('a*b*c', 'aXXbYY'), false);
  assert.equal(m('abc', 'abcd'), false);
  assert.equal(m('abc*', 'abc'), true);
  assert.equal(m('[abc', 'a'), true, 'an unclosed class matches as Redis does');
  assert.equal(m('[', 'a'), false);
  assert.equal(m('[^', 'a'), true);
  assert.equal(globMatch(Buffer.from([0x2a, 0]), Buffer.from([1, 2, 0])), true, 'binary bytes');
  assert.equal(m('*'.repeat(50) + 'x', 'a'.repeat(60)), false, 'many stars end quickly');
});

/**
 * Runs matches in a worker that is terminated after `ms`: a matcher that takes exponential time
 * fails this test instead of hanging the run.
 */
function matchInWorker(cases: ReadonlyArray<readonly [string, string]>, ms: number): Promise<boolean[]> {
  const url = new URL('../../src/commands/glob.js', import.meta.url).href;
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(${JSON.stringify(url)}).then(({ globMatch }) => {
      parentPort.postMessage(workerData.map(([p, s]) => globMatch(Buffer.from(p), Buffer.from(s))));
    });`;
  const worker = new Worker(code, { eval: true, workerData: cases });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void worker.terminate();
      reject(new Error(`matching took more than ${ms} ms`));
    }, ms);
    worker.once('message', (r: boolean[]) => {
      clearTimeout(timer);
      void worker.terminate();
      resolve(r);
    });
    worker.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

test("glob: Redis' regression cases for long nested loops answer at once (CVE-2022-36021, CVE-2024-31228)", async () => {
  const cases: Array<readonly [string, string, boolean]> = [
    // tests/unit/keyspace.tcl "Regression for pattern matching long nested loops"
    ['a*'.repeat(20) + 'b', 'a'.repeat(40), false],
    // "Regression for pattern matching very long nested loops" (Redis 7.0.15+ / 7.2.6)
    ['*?'.repeat(50000), 'a'.repeat(50000), false],
    // The 9-wildcard stall, on a longer key.
    ['*a'.repeat(9) + '*b', 'a'.repeat(4096), false],
    ['*[ab]?'.repeat(30) + 'c', 'ab'.repeat(2000), false],
    // More than 1000 nested stars is no match in Redis; fewer still match.
    ['*a'.repeat(1100), 'a'.repeat(1100), false],
    ['*a'.repeat(900), 'a'.repeat(900), true],
  ];
  const started = Date.now();
  const got = await matchInWorker(cases.map(([p, s]) => [p, s] as const), 10_000);
  assert.deepEqual(got, cases.map(([, , want]) => want));
  assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
});

/** The textbook backtracking matcher (Redis before 7.0.9): exponential, but right on short inputs. */
function naive(p: Buffer, pi: number, s: Buffer, si: number): boolean {
  while (pi < p.length && si < s.length) {
    const c = p[pi];
    if (c === 0x2a) {
      while (pi + 1 < p.length && p[pi + 1] === 0x2a) pi++;
      if (pi + 1 === p.length) return true;
      for (let k = si; k < s.length; k++) if (naive(p, pi + 1, s, k)) return true;
      return false;
    }
    // Everything but `*` consumes exactly one byte: reuse the real matcher on that one element.
    const end = elementEnd(p, pi);
    if (!globMatch(p.subarray(pi, end), s.subarray(si, si + 1))) return false;
    pi = end;
    si++;
    if (si === s.length) {
      while (pi < p.length && p[pi] === 0x2a) pi++;
      break;
    }
  }
  return pi === p.length && si === s.length;
}

/** Where the pattern element starting at `pi` (not a `*`) ends, as stringmatchlen walks it. */
function elementEnd(p: Buffer, pi: number): number {
  if (p[pi] === 0x5c) return Math.min(pi + 2, p.length);
  if (p[pi] !== 0x5b) return pi + 1;
  let i = pi + 1;
  if (p[i] === 0x5e) i++;
  for (;;) {
    if (p[i] === 0x5c && p.length - i >= 2) i++;
    else if (p[i] === 0x5d) return i + 1;
    else if (i >= p.length) return p.length;
    else if (p.length - i >= 3 && p[i + 1] === 0x2d) i += 2;
    i++;
  }
}

test('glob: skipping longer matches never changes an answer (seeded property test against plain backtracking)', () => {
  const patternChars = fc.constantFrom(...'ab*?[]^-\\');
  const subjectChars = fc.constantFrom(...'ab[]*-\\^');
  fc.assert(
    fc.property(fc.string({ unit: patternChars, maxLength: 12 }), fc.string({ unit: subjectChars, maxLength: 10 }), (p, s) => {
      if (p === '*') return;
      const pb = Buffer.from(p, 'latin1');
      const sb = Buffer.from(s, 'latin1');
      assert.equal(globMatch(pb, sb), naive(pb, 0, sb, 0), `pattern ${JSON.stringify(p)} subject ${JSON.stringify(s)}`);
    }),
    { seed: 18_003, numRuns: 20_000 },
  );
});
