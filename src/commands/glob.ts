/** Redis' glob matching (stringmatchlen): `*`, `?`, `[abc]`, `[^a]`, `[a-z]` and `\x` escapes, on bytes. */

export function globMatch(pattern: Buffer, subject: Buffer): boolean {
  return match(pattern, 0, subject, 0, 0);
}

function match(p: Buffer, pi: number, s: Buffer, si: number, depth: number): boolean {
  // Redis caps recursion too: a pathological pattern cannot blow the stack.
  if (depth > 1000) return false;
  while (pi < p.length && si < s.length) {
    const c = p[pi];
    if (c === 0x2a /* * */) {
      while (pi + 1 < p.length && p[pi + 1] === 0x2a) pi++;
      if (pi + 1 === p.length) return true;
      for (let k = si; k < s.length; k++) if (match(p, pi + 1, s, k, depth + 1)) return true;
      return false;
    } else if (c === 0x3f /* ? */) {
      si++;
    } else if (c === 0x5b /* [ */) {
      pi++;
      const not = p[pi] === 0x5e; /* ^ */
      if (not) pi++;
      let matched = false;
      for (;;) {
        if (pi >= p.length) {
          pi--;
          break;
        }
        if (p[pi] === 0x5c /* \ */ && pi + 1 < p.length) {
          pi++;
          if (p[pi] === s[si]) matched = true;
        } else if (p[pi] === 0x5d /* ] */) {
          break;
        } else if (pi + 2 < p.length && p[pi + 1] === 0x2d /* - */) {
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
      if (c === 0x5c && pi + 1 < p.length) pi++;
      if (p[pi] !== s[si]) return false;
      si++;
    }
    pi++;
    if (si === s.length) {
      while (pi < p.length && p[pi] === 0x2a) pi++;
      break;
    }
  }
  // Trailing stars match nothing too (Redis never asks this for an empty string: it treats a lone
  // `*` as "all" before matching, so `*` must match the empty key here as well).
  if (si === s.length) while (pi < p.length && p[pi] === 0x2a) pi++;
  return pi === p.length && si === s.length;
}
