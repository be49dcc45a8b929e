/**
 * INCRBYFLOAT's arithmetic as Redis does it on x86-64: C `long double` (x87 80-bit extended: a
 * 64-bit significand, exponents down to 2^-16445 with denormals, finite below 2^16384), parsed
 * as glibc's strtold (Redis' string2ld), added with one rounding (to nearest, ties to even), and
 * printed as Redis' ld2string(LD_STR_HUMAN): "%.17Lf" with trailing zeros removed. A double
 * would print 10.5 + 0.1 as 10.599999999999999; the extended format prints 10.6, as Redis does.
 *
 * Exact with BigInt: a value is sign × m × 2^e; every operation rounds the exact result once.
 */

/** A finite extended-precision value: (-1)^neg × m × 2^e, m < 2^64. */
export interface Ext {
  readonly neg: boolean;
  readonly m: bigint;
  readonly e: number;
}

/** The outcome of parsing or adding: a finite value, an infinity, or NaN. */
export type ExtResult = Ext | { readonly inf: boolean; readonly neg: boolean } | 'nan';

const MANT_BITS = 64;
/** Exponent of the smallest denormal's unit (2^-16445): no value has a smaller e. */
const E_MIN = -16445;
/** Largest e of a finite value with a 64-bit significand: below 2^16384. */
const E_MAX = 16384 - MANT_BITS;
const TOP = 1n << 64n;
const HIGH = 1n << 63n;
/** Redis' MAX_LONG_DOUBLE_CHARS: string2ld refuses inputs of this length or more. */
const MAX_CHARS = 5 * 1024;

export function isFiniteExt(x: ExtResult): x is Ext {
  return typeof x === 'object' && 'm' in x;
}

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/** num/den × 2^exp2 (num ≥ 0, den > 0) rounded to the extended format, ties to even. */
function round(neg: boolean, num: bigint, den: bigint, exp2: number): ExtResult {
  if (num === 0n) return { neg, m: 0n, e: 0 };
  const quotient = (e: number): [bigint, bigint, bigint] => {
    const shift = exp2 - e;
    const n = shift >= 0 ? num << BigInt(shift) : num;
    const d = shift >= 0 ? den : den << BigInt(-shift);
    return [n / d, n % d, d];
  };
  let e = bitLength(num) - bitLength(den) + exp2 - MANT_BITS;
  let [q, r, d] = quotient(e);
  while (q >= TOP) [q, r, d] = quotient(++e);
  while (q < HIGH && e > E_MIN) [q, r, d] = quotient(--e);
  if (e < E_MIN) [q, r, d] = quotient((e = E_MIN));
  const twice = 2n * r;
  if (twice > d || (twice === d && (q & 1n) === 1n)) q += 1n;
  if (q === TOP) {
    q = HIGH;
    e += 1;
  }
  if (e > E_MAX) return { inf: true, neg };
  return { neg, m: q, e };
}

const DECIMAL = /^([0-9]*)(?:\.([0-9]*))?(?:[eE]([-+]?[0-9]+))?$/;
const HEX = /^0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([-+]?[0-9]+))?$/;

/**
 * Parses as Redis' string2ld: the whole text must be a number strtold reads (decimal, hex
 * float, inf/infinity); leading space, NaN, overflow and underflow to zero are refused (null).
 */
export function parseLongDouble(text: Buffer | string): ExtResult | null {
  const s = typeof text === 'string' ? text : text.toString('latin1');
  if (s.length === 0 || s.length >= MAX_CHARS) return null;
  let body = s;
  let neg = false;
  if (body[0] === '+' || body[0] === '-') {
    neg = body[0] === '-';
    body = body.slice(1);
  }
  const lower = body.toLowerCase();
  if (lower === 'inf' || lower === 'infinity') return { inf: true, neg };
  const hex = HEX.exec(body);
  if (hex !== null) {
    const digits = (hex[1] ?? '') + (hex[2] ?? '');
    if (digits.length === 0) return null;
    const exp = clampExponent(hex[3]) - 4 * (hex[2] ?? '').length;
    return finiteOrNull(round(neg, BigInt(`0x${digits}`), 1n, exp), BigInt(`0x${digits}`) !== 0n);
  }
  const dec = DECIMAL.exec(body);
  if (dec === null) return null;
  const digits = (dec[1] ?? '') + (dec[2] ?? '');
  if (digits.length === 0) return null;
  const mantissa = BigInt(digits);
  if (mantissa === 0n) return { neg, m: 0n, e: 0 };
  const exp10 = clampExponent(dec[3]) - (dec[2] ?? '').length;
  // Far outside the format (beyond ~1.19e4932 or below the smallest denormal ~3.6e-4951): no need
  // to build the power of ten to know the answer.
  const magnitude = exp10 + digits.replace(/^0+/, '').length;
  if (magnitude > 4940) return null;
  if (magnitude < -4960) return null;
  const value = exp10 >= 0 ? round(neg, mantissa * 10n ** BigInt(exp10), 1n, 0) : round(neg, mantissa, 10n ** BigInt(-exp10), 0);
  return finiteOrNull(value, true);
}

/** An exponent's digits as a number, held within ±100000 (far beyond any representable value). */
function clampExponent(digits: string | undefined): number {
  if (digits === undefined) return 0;
  const n = Number(digits);
  return Math.max(-100_000, Math.min(100_000, n));
}

/** strtold's ERANGE cases that string2ld refuses: overflow to infinity, a non-zero input rounding to zero. */
function finiteOrNull(x: ExtResult, nonZeroInput: boolean): ExtResult | null {
  if (!isFiniteExt(x)) return null;
  if (nonZeroInput && x.m === 0n) return null;
  return x;
}

/** The extended value of a 64-bit integer (exact: it has 64 bits at most). */
export function fromBigInt(n: bigint): Ext {
  return { neg: n < 0n, m: n < 0n ? -n : n, e: 0 };
}

/** a + b rounded once, as x87 addition of two long doubles. */
export function add(a: ExtResult, b: ExtResult): ExtResult {
  if (a === 'nan' || b === 'nan') return 'nan';
  if (!isFiniteExt(a) || !isFiniteExt(b)) {
    if (!isFiniteExt(a) && !isFiniteExt(b)) return a.neg === b.neg ? a : 'nan';
    return isFiniteExt(a) ? b : a;
  }
  if (a.m === 0n) return b.m === 0n ? { neg: a.neg && b.neg, m: 0n, e: 0 } : b;
  if (b.m === 0n) return a;
  const e = Math.min(a.e, b.e);
  const sa = (a.neg ? -a.m : a.m) << BigInt(a.e - e);
  const sb = (b.neg ? -b.m : b.m) << BigInt(b.e - e);
  const sum = sa + sb;
  // An exact zero sum is +0 in round-to-nearest.
  return round(sum < 0n, sum < 0n ? -sum : sum, 1n, e);
}

/**
 * Redis' ld2string(…, LD_STR_HUMAN): "%.17Lf" (exact value rounded to 17 decimals, ties to
 * even as glibc does), trailing zeros and a bare '.' removed, "-0" written as "0".
 */
export function formatHuman(x: ExtResult): string {
  if (x === 'nan') return 'nan';
  if (!isFiniteExt(x)) return x.neg ? '-inf' : 'inf';
  const scale = 10n ** 17n;
  let scaled: bigint;
  if (x.e >= 0) scaled = (x.m << BigInt(x.e)) * scale;
  else {
    const num = x.m * scale;
    const shift = BigInt(-x.e);
    scaled = num >> shift;
    const rem = num - (scaled << shift);
    const half = 1n << (shift - 1n);
    if (rem > half || (rem === half && (scaled & 1n) === 1n)) scaled += 1n;
  }
  const digits = scaled.toString().padStart(18, '0');
  let out = `${x.neg ? '-' : ''}${digits.slice(0, -17)}.${digits.slice(-17)}`;
  out = out.replace(/0+$/, '').replace(/\.$/, '');
  return out === '-0' ? '0' : out;
}
