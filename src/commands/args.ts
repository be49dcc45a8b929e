/**
 * The one argument reader every command family uses: integers, floats, keywords and expiry
 * options, parsed as Redis parses them and refused with Redis' error texts. Parsing failures throw
 * a CommandError, which the dispatcher turns into the error reply.
 */
import { CommandError } from './types.js';

export const SYNTAX_ERROR_TEXT = 'ERR syntax error';
export const NOT_INTEGER_TEXT = 'ERR value is not an integer or out of range';
export const NOT_FLOAT_TEXT = 'ERR value is not a valid float';

// As string2ll: no sign on zero ("-0" is not an integer), no leading zeros, no '+'.
const INTEGER = /^(0|-?[1-9][0-9]*)$/;

/** Parses a whole decimal number the way Redis' string2ll does; null when it is not one (or not exact in a double). */
export function parseInteger(arg: Buffer): number | null {
  if (arg.length === 0 || arg.length > 20) return null;
  const s = arg.toString('latin1');
  if (!INTEGER.test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : null;
}

/** Parses a signed 64-bit integer as Redis does; null when it is not one. */
export function parseInt64(arg: Buffer): bigint | null {
  if (arg.length === 0 || arg.length > 20) return null;
  const s = arg.toString('latin1');
  if (!INTEGER.test(s)) return null;
  const n = BigInt(s);
  return n >= -(2n ** 63n) && n <= 2n ** 63n - 1n ? n : null;
}

/** An integer argument, or Redis' "not an integer" error. */
export function integerArg(arg: Buffer): number {
  const n = parseInteger(arg);
  if (n === null) throw new CommandError(NOT_INTEGER_TEXT);
  return n;
}

/**
 * A float argument as Redis' string2ld accepts it (decimal or exponent notation, inf), or its
 * "not a valid float" error. NaN and text with spaces are refused.
 */
export function floatArg(arg: Buffer): number {
  const s = arg.toString('latin1');
  if (s.length === 0 || s.length > 5120 || /\s/.test(s) || !/^[-+]?(inf|infinity|[0-9]*\.?[0-9]*(e[-+]?[0-9]+)?)$/i.test(s)) {
    throw new CommandError(NOT_FLOAT_TEXT);
  }
  const n = /inf/i.test(s) ? (s.startsWith('-') ? -Infinity : Infinity) : Number(s);
  if (Number.isNaN(n)) throw new CommandError(NOT_FLOAT_TEXT);
  return n;
}

/** An argument as a lower-case keyword, for case-insensitive option matching. */
export function keyword(arg: Buffer): string {
  return arg.toString('latin1').toLowerCase();
}

/** Walks a command's options left to right, Kvrocks' CommandParser style. */
export class ArgReader {
  constructor(
    private readonly args: readonly Buffer[],
    private pos: number,
  ) {}

  get done(): boolean {
    return this.pos >= this.args.length;
  }

  /** Arguments not read yet. */
  get left(): number {
    return this.args.length - this.pos;
  }

  get position(): number {
    return this.pos;
  }

  /** The next argument as a keyword, without taking it ('' at the end). */
  peekKeyword(): string {
    return this.done ? '' : keyword(this.args[this.pos]);
  }

  /** Takes the next argument as a keyword. */
  keyword(): string {
    return keyword(this.take());
  }

  /** Takes the next argument; a missing one is a syntax error (an option without its value). */
  take(): Buffer {
    if (this.done) throw new CommandError(SYNTAX_ERROR_TEXT);
    return this.args[this.pos++];
  }

  integer(): number {
    return integerArg(this.take());
  }

  /** The arguments not read yet, taking them all. */
  rest(): Buffer[] {
    const out = this.args.slice(this.pos);
    this.pos = this.args.length;
    return out;
  }
}

// ---- expiry options ---------------------------------------------------------------------------

export type ExpiryUnit = 'ex' | 'px' | 'exat' | 'pxat';

export function isExpiryUnit(word: string): word is ExpiryUnit {
  return word === 'ex' || word === 'px' || word === 'exat' || word === 'pxat';
}

const LLONG_MAX = 2n ** 63n - 1n;
const LLONG_MIN = -(2n ** 63n);
/**
 * Expiries are kept as epoch ms in a double, exact to ±(2^53-1) ms (year 287396). Redis accepts
 * any time that fits in a signed 64-bit count; a time beyond our range is kept at its edge: one
 * far in the future stays "never before 287396", one far in the past deletes the key, as Redis.
 * Only PEXPIRETIME/EXPIRETIME (and GT/LT between two such times) can tell the difference.
 */
const MAX_MS = BigInt(Number.MAX_SAFE_INTEGER);

function invalidExpire(command: string): CommandError {
  return new CommandError(`ERR invalid expire time in '${command}' command`);
}

/**
 * The absolute expiry in epoch ms for `amount` in `unit`, relative times counted from `now`.
 * SET, SETEX and GETEX want a positive amount (`positive`); the EXPIRE family takes any value and
 * handles a time in the past itself. The range checks are Redis 7's (expireGenericCommand,
 * getExpireMillisecondsOrReply): seconds must survive ×1000 and the sum must fit in 64 bits,
 * else Redis' "invalid expire time" error; what fits is clamped to what we keep (MAX_MS).
 */
export function absoluteExpiry(amount: Buffer, unit: ExpiryUnit, command: string, now: number, positive: boolean): number {
  const n = parseInt64(amount);
  if (n === null) throw new CommandError(NOT_INTEGER_TEXT);
  if (positive && n <= 0n) throw invalidExpire(command);
  const seconds = unit === 'ex' || unit === 'exat';
  if (seconds && (n > LLONG_MAX / 1000n || n < LLONG_MIN / 1000n)) throw invalidExpire(command);
  const ms = seconds ? n * 1000n : n;
  const base = unit === 'ex' || unit === 'px' ? BigInt(now) : 0n;
  if (ms > LLONG_MAX - base) throw invalidExpire(command);
  const at = ms + base;
  return Number(at > MAX_MS ? MAX_MS : at < -MAX_MS ? -MAX_MS : at);
}

/** Redis' HFE_MAX_ABS_TIME_MSEC: hash-field expiries are kept in 48 bits. */
const MAX_FIELD_EXPIRY_MS = 70368744177663;

/** The absolute expiry of a hash field (HEXPIRE family, HSETEX), with Redis 7.4's limits and texts. */
export function fieldExpiry(amount: Buffer, unit: ExpiryUnit, command: string, now: number): number {
  const n = parseInteger(amount);
  if (n === null) throw new CommandError(NOT_INTEGER_TEXT);
  if (n < 0) throw new CommandError('ERR invalid expire time, must be >= 0');
  const ms = unit === 'ex' || unit === 'exat' ? n * 1000 : n;
  const at = unit === 'ex' || unit === 'px' ? ms + now : ms;
  if (ms > MAX_FIELD_EXPIRY_MS || at > MAX_FIELD_EXPIRY_MS) throw invalidExpire(command);
  return at;
}

/** What a command's expiry options asked for. */
export type ExpiryOption = { kind: 'none' } | { kind: 'keep' } | { kind: 'persist' } | { kind: 'at'; unit: ExpiryUnit; amount: Buffer };

/**
 * Reads one expiry option (`EX s|PX ms|EXAT t|PXAT t`, and `KEEPTTL` or `PERSIST` where the
 * command allows it) if `word` is one; returns the new state, or null when `word` is not an
 * expiry option. Two different expiry options are a syntax error, as in Redis; the same unit
 * twice keeps the last amount.
 */
export function readExpiryOption(
  word: string,
  reader: ArgReader,
  current: ExpiryOption,
  allowed: { keepttl?: boolean; persist?: boolean },
): ExpiryOption | null {
  if (isExpiryUnit(word)) {
    if (current.kind === 'keep' || current.kind === 'persist' || (current.kind === 'at' && current.unit !== word)) {
      throw new CommandError(SYNTAX_ERROR_TEXT);
    }
    return { kind: 'at', unit: word, amount: reader.take() };
  }
  if ((word === 'keepttl' && allowed.keepttl) || (word === 'persist' && allowed.persist)) {
    if (current.kind !== 'none' && current.kind !== (word === 'keepttl' ? 'keep' : 'persist')) throw new CommandError(SYNTAX_ERROR_TEXT);
    return { kind: word === 'keepttl' ? 'keep' : 'persist' };
  }
  return null;
}
