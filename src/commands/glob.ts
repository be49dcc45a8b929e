/**
 * Redis' glob matching (stringmatchlen): `*`, `?`, `[abc]`, `[^a]`, `[a-z]` and `\x` escapes, on bytes.
 *
 * Bounded as Redis bounds it since 7.0.9 (CVE-2022-36021) and 7.0.15/7.2.6 (CVE-2024-31228), so the
 * answers stay Redis' own while no pattern can take exponential time or blow the stack:
 * - once the rest of a pattern after a `*` has failed from every position of the rest of the
 *   subject, no earlier `*` can help by matching more (it would only start the rest later), so the
 *   whole match fails at once ("skip longer matches"). This makes one match cost at most about
 *   pattern length × subject length steps, instead of subject length to the power of the stars.
 * - more than 1000 nested `*` (non-adjacent stars) fail the match, as in Redis.
 */

const STAR = 0x2a;
const QUESTION = 0x3f;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const CARET = 0x5e;
const BACKSLASH = 0x5c;
const DASH = 0x2d;

/** Redis' protection against abusive patterns: deeper `*` nesting is no match. */
const MAX_NESTING = 1000;

/**
 * Whether `subject` matches `pattern`, as Redis' KEYS / SCAN MATCH / HSCAN MATCH decide. A pattern
 * of exactly `*` matches everything, the empty name included (Redis never matches it then); every
 * other pattern is matched as stringmatchlen does, so `**` does not match an empty name.
 */
export function globMatch(pattern: Buffer, subject: Buffer): boolean {
  if (pattern.length === 1 && pattern[0] === STAR) return true;
  return match(pattern, 0, subject, 0, { skipLonger: false }, 0);
}

interface MatchState {
  /** Set once the pattern after some `*` failed from every remaining position: stop everything. */
  skipLonger: boolean;
}

/** Reads past the end of a buffer see 0, as Redis' NUL-terminated strings do. */
function at(b: Buffer, i: number): number {
  return i < b.length ? b[i] : 0;
}

function match(p: Buffer, pi: number, s: Buffer, si: number, state: MatchState, nesting: number): boolean {
  if (nesting > MAX_NESTING) return false;
  while (pi < p.length && si < s.length) {
    const c = p[pi];
    if (c === STAR) {
      while (pi + 1 < p.length && p[pi + 1] === STAR) pi++;
      if (pi + 1 === p.length) return true;
      for (; si < s.length; si++) {
        if (match(p, pi + 1, s, si, state, nesting + 1)) return true;
        if (state.skipLonger) return false;
      }
      state.skipLonger = true;
      return false;
    } else if (c === QUESTION) {
      si++;
    } else if (c === OPEN) {
      pi++;
      const not = at(p, pi) === CARET;
      if (not) pi++;
      let matched = false;
      for (;;) {
        if (at(p, pi) === BACKSLASH && p.length - pi >= 2) {
          pi++;
          if (p[pi] === s[si]) matched = true;
        } else if (at(p, pi) === CLOSE) {
          break;
        } else if (pi >= p.length) {
          // An unclosed class: Redis steps back onto its last byte and ends the class there.
          pi--;
          break;
        } else if (p.length - pi >= 3 && p[pi + 1] === DASH) {
          let lo = p[pi];
          let hi = p[pi + 2];
          if (lo > hi) [lo, hi] = [hi, lo];
          pi += 2;
          if (s[si] >= lo && s[si] <= hi) matched = true;
        } else if (p[pi] === s[si]) {
          matched = true;
        }
        pi++;
      }
      if (not) matched = !matched;
      if (!matched) return false;
      si++;
    } else {
      if (c === BACKSLASH && p.length - pi >= 2) pi++;
      if (p[pi] !== s[si]) return false;
      si++;
    }
    pi++;
    if (si === s.length) {
      while (pi < p.length && p[pi] === STAR) pi++;
      break;
    }
  }
  return pi === p.length && si === s.length;
}
