/**
 * Streaming RESP request parser: multibulk arrays of bulk strings and inline commands.
 *
 * Bytes arrive in arbitrary chunks; complete commands come out in order. Large bulk payloads are
 * collected as a list of chunk slices and joined once, so a 512 MiB value is copied one time, not
 * once per TCP read. Every limit is checked before memory is committed to it.
 *
 * A bulk of at least `BulkStaging.minLength` bytes may instead go to a sink as it arrives (a
 * streamed write: the server stores it in chunks, and the command receives what the sink's end()
 * returns in its place); the sink decides which commands' arguments it takes.
 */

export class ProtocolError extends Error {
  constructor(detail: string) {
    super(`Protocol error: ${detail}`);
  }
}

export interface ParserLimits {
  /** Largest bulk string accepted (Redis proto-max-bulk-len). */
  maxBulkLen: number;
  /** Largest element count of one multibulk. */
  maxArgs: number;
  /** Largest number of bytes one unfinished command may hold (Redis client-query-buffer-limit). */
  maxQueryBuffer: number;
}

/** Redis' PROTO_INLINE_MAX_SIZE: the longest inline command or length line. */
const INLINE_MAX = 64 * 1024;
const CR = 13;
const LF = 10;
/** Bulks at least this big are gathered as chunk slices instead of waiting in the main buffer. */
const BIG_BULK = 32 * 1024;
/**
 * Slices of a big bulk smaller than this are copied into a staging buffer instead of being kept as
 * separate Buffer objects, so a client dribbling a big value a few bytes per read cannot make the
 * server hold far more memory (one object per read) than the bytes it has sent.
 */
const SMALL_SLICE = 4096;
/** Size of one staging buffer (never more than the bytes the bulk still needs). */
const STAGE_SIZE = 64 * 1024;

export type Args = Buffer[];

/** Where a large bulk goes while it arrives, instead of into memory. */
export interface BulkSink {
  /** The next bytes of the payload (in order, never more than the declared length in total). */
  write(part: Buffer): void;
  /** The payload is complete: what the command receives as this argument. */
  end(): Buffer;
  /** The bulk will never complete (protocol error, client gone). */
  abort(): void;
}

export interface BulkStaging {
  /** Bulks shorter than this are never offered. */
  readonly minLength: number;
  /** A sink for bulk number `args.length` of the command whose arguments so far are `args`, or null to read it into memory. */
  open(args: readonly Buffer[], length: number): BulkSink | null;
}

/**
 * Reusable buffers to read big bulks into (the store's ValueBuffers): a buffer for `length`
 * payload bytes plus CRLF, or null. With `fresh` false only an idle one is given, so a declared
 * length alone never makes the server allocate.
 */
export interface ReceiveBuffers {
  lend(length: number, fresh: boolean): Buffer | null;
}

export class RequestParser {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** Elements still expected in the current multibulk, or -1 between commands. */
  private remaining = -1;
  private args: Args = [];
  /** A big bulk being gathered: its declared length and the slices received so far. */
  private bigLen = -1;
  private bigChunks: Buffer[] = [];
  private bigGot = 0;
  /** Staging buffer collecting small slices of the big bulk, and how much of it is filled. */
  private stage: Buffer | null = null;
  private stageLen = 0;
  private commandBytes = 0;
  /** The sink the big bulk being read goes to, or null when it is gathered in memory. */
  private sink: BulkSink | null = null;
  /** A lent buffer the big bulk is read straight into (its first bigGot bytes are in), or null. */
  private direct: Buffer | null = null;

  constructor(
    private readonly limits: ParserLimits,
    private readonly staging?: BulkStaging,
    private readonly buffers?: ReceiveBuffers,
  ) {}

  /** Bytes held for commands not yet complete (a staged bulk's bytes are the sink's). */
  get buffered(): number {
    return this.buf.length - this.pos + (this.sink === null ? this.bigGot : 0);
  }

  /**
   * Gives up on the command being read (the connection is closing): its sink is aborted, and the
   * arguments read so far are returned (they may stand for staged values to let go of).
   */
  abandon(): Args {
    const sink = this.sink;
    this.sink = null;
    this.direct = null;
    this.bigLen = -1;
    this.bigChunks = [];
    this.bigGot = 0;
    sink?.abort();
    const args = this.args;
    this.args = [];
    this.remaining = -1;
    this.buf = EMPTY;
    this.pos = 0;
    return args;
  }

  /** Declared element count of the multibulk being read, or 0 between commands. */
  get pendingArgs(): number {
    return this.remaining < 0 ? 0 : this.args.length + this.remaining;
  }

  /** Declared length of the bulk being read, or -1 when no bulk header has been read yet. */
  get pendingBulkLen(): number {
    if (this.bigLen >= 0) return this.bigLen;
    if (this.remaining <= 0 || this.pos >= this.buf.length || this.buf[this.pos] !== 0x24 /* '$' */) return -1;
    const cr = this.buf.indexOf(CR, this.pos);
    return cr < 0 ? -1 : (parseLength(this.buf, this.pos + 1, cr) ?? -1);
  }

  /**
   * Consumes `chunk` and appends every command it completes to `out`.
   * Throws ProtocolError on malformed input; the connection must then be closed, since the
   * stream can no longer be framed.
   */
  push(chunk: Buffer, out: Args[]): void {
    if (this.bigLen >= 0) chunk = this.feedBig(chunk, out);
    if (chunk.length === 0) return;
    if (this.pos >= this.buf.length) {
      this.buf = chunk;
    } else {
      this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk]);
    }
    this.pos = 0;
    this.parse(out);
    if (this.pos >= this.buf.length) {
      this.buf = EMPTY;
      this.pos = 0;
    }
  }

  private parse(out: Args[]): void {
    for (;;) {
      if (this.remaining < 0) {
        if (this.pos >= this.buf.length) return;
        if (this.buf[this.pos] === 0x2a /* '*' */) {
          if (!this.readMultibulkHeader()) return;
        } else {
          if (!this.readInline(out)) return;
        }
        continue;
      }
      if (!this.readBulk(out)) return;
    }
  }

  /** Returns false when more bytes are needed. */
  private readMultibulkHeader(): boolean {
    const line = this.readLine('too big mbulk count string');
    if (line === null) return false;
    const n = parseLength(this.buf, this.pos + 1, line);
    this.pos = line + 2;
    if (n === null || n > this.limits.maxArgs) throw new ProtocolError('invalid multibulk length');
    if (n <= 0) return true; // Redis ignores empty and null multibulks
    this.remaining = n;
    this.args = [];
    this.commandBytes = 0;
    return true;
  }

  private readBulk(out: Args[]): boolean {
    if (this.pos >= this.buf.length) return false;
    const first = this.buf[this.pos];
    if (first !== 0x24 /* '$' */) {
      throw new ProtocolError(`expected '$', got '${String.fromCharCode(first)}'`);
    }
    const line = this.readLine('too big bulk count string');
    if (line === null) return false;
    const len = parseLength(this.buf, this.pos + 1, line);
    if (len === null || len < 0 || len > this.limits.maxBulkLen) {
      throw new ProtocolError('invalid bulk length');
    }
    const headerEnd = line + 2;
    // A staged bulk is not held in memory, but the query buffer limit still counts it, as Redis
    // counts a command's arguments: lowering client-query-buffer-limit refuses the same commands
    // whether or not their values are staged.
    if (this.staging !== undefined && len >= this.staging.minLength) {
      this.checkQueryBuffer(len);
      const sink = this.staging.open(this.args, len);
      if (sink !== null) {
        this.commandBytes += len;
        this.sink = sink;
        this.bigLen = len;
        this.bigGot = 0;
        return this.startBig(headerEnd, out);
      }
    }
    // Checked on every attempt but charged only once the bulk is consumed: this header is parsed
    // again on each push while a small bulk waits for its bytes.
    this.checkQueryBuffer(len);
    const available = this.buf.length - headerEnd;
    if (available >= len + 2) {
      checkCrlf(this.buf, headerEnd + len);
      this.commandBytes += len;
      // Copy small values out of the shared read buffer so a retained key does not pin 64 KiB.
      const slice = this.buf.subarray(headerEnd, headerEnd + len);
      this.args.push(len < 4096 ? Buffer.from(slice) : slice);
      this.pos = headerEnd + len + 2;
      this.remaining--;
      if (this.remaining === 0) this.finish(out);
      return true;
    }
    if (len + 2 >= BIG_BULK) {
      this.commandBytes += len;
      this.bigLen = len;
      this.bigChunks = [];
      this.bigGot = 0;
      this.stage = null;
      this.stageLen = 0;
      this.direct = this.buffers?.lend(len, false) ?? null;
      return this.startBig(headerEnd, out);
    }
    return false;
  }

  /** Starts reading a big bulk whose payload begins at `payloadStart`; false when more bytes are needed. */
  private startBig(payloadStart: number, out: Args[]): boolean {
    const rest = this.buf.subarray(payloadStart);
    this.buf = EMPTY;
    this.pos = 0;
    const tail = this.feedBig(rest, out);
    if (tail.length > 0) {
      this.buf = tail;
      this.pos = 0;
    }
    return this.bigLen < 0 && this.buf.length > 0;
  }

  /** Passes the payload of a staged bulk to its sink and checks the CRLF after it; returns the bytes that follow. */
  private feedSink(chunk: Buffer, out: Args[]): Buffer {
    const sink = this.sink!;
    const take = Math.min(chunk.length, this.bigLen + 2 - this.bigGot);
    const payload = Math.min(take, Math.max(0, this.bigLen - this.bigGot));
    if (payload > 0) sink.write(chunk.subarray(0, payload));
    for (let i = payload; i < take; i++) {
      const expected = this.bigGot + i === this.bigLen ? CR : LF;
      if (chunk[i] !== expected) {
        this.sink = null;
        sink.abort();
        throw new ProtocolError("expected '\\r\\n' after bulk data");
      }
    }
    this.bigGot += take;
    if (this.bigGot < this.bigLen + 2) return EMPTY;
    this.sink = null;
    this.bigLen = -1;
    this.bigGot = 0;
    this.args.push(sink.end());
    this.remaining--;
    if (this.remaining === 0) this.finish(out);
    return chunk.subarray(take);
  }

  /** Copies the payload of a big bulk into its lent buffer; returns the bytes that follow it. */
  private feedDirect(chunk: Buffer, out: Args[]): Buffer {
    const into = this.direct!;
    const need = this.bigLen + 2 - this.bigGot;
    const take = Math.min(need, chunk.length);
    chunk.copy(into, this.bigGot, 0, take);
    this.bigGot += take;
    if (take < need) return EMPTY;
    this.direct = null;
    return this.endBig(into, chunk.subarray(need), out);
  }

  /** Gathers the payload of a big bulk; returns the bytes that follow it. */
  private feedBig(chunk: Buffer, out: Args[]): Buffer {
    if (this.sink !== null) return this.feedSink(chunk, out);
    if (this.direct !== null) return this.feedDirect(chunk, out);
    const need = this.bigLen + 2 - this.bigGot;
    if (chunk.length < need) {
      if (chunk.length > 0) this.gather(chunk);
      return EMPTY;
    }
    this.gather(chunk.subarray(0, need));
    this.flushStage();
    return this.endBig(this.joinChunks(), chunk.subarray(need), out);
  }

  /** The gathered slices as one buffer: a lent one when the length is pooled, so it can be reused. */
  private joinChunks(): Buffer {
    if (this.bigChunks.length === 1) return this.bigChunks[0];
    const into = this.buffers?.lend(this.bigLen, true) ?? null;
    if (into === null) return Buffer.concat(this.bigChunks, this.bigLen + 2);
    let at = 0;
    for (const part of this.bigChunks) at += part.copy(into, at);
    return into;
  }

  /** The big bulk's payload and CRLF are in `whole`: it becomes the next argument. */
  private endBig(whole: Buffer, rest: Buffer, out: Args[]): Buffer {
    checkCrlf(whole, this.bigLen);
    this.args.push(whole.subarray(0, this.bigLen));
    this.bigLen = -1;
    this.bigChunks = [];
    this.bigGot = 0;
    this.remaining--;
    if (this.remaining === 0) this.finish(out);
    return rest;
  }

  /** Adds part of the big bulk's payload; `part` never exceeds what the bulk still needs. */
  private gather(part: Buffer): void {
    if (part.length >= SMALL_SLICE) {
      this.flushStage();
      this.bigChunks.push(part);
    } else {
      if (this.stage === null || this.stageLen + part.length > this.stage.length) {
        this.flushStage();
        this.stage = Buffer.allocUnsafe(Math.min(STAGE_SIZE, this.bigLen + 2 - this.bigGot));
        this.stageLen = 0;
      }
      part.copy(this.stage, this.stageLen);
      this.stageLen += part.length;
    }
    this.bigGot += part.length;
  }

  private flushStage(): void {
    if (this.stage !== null && this.stageLen > 0) {
      const used = this.stage.subarray(0, this.stageLen);
      // A mostly empty stage is copied out so its unused space is not held until the bulk ends.
      this.bigChunks.push(this.stageLen * 2 < this.stage.length ? Buffer.from(used) : used);
    }
    this.stage = null;
    this.stageLen = 0;
  }

  private readInline(out: Args[]): boolean {
    const nl = this.buf.indexOf(LF, this.pos);
    if (nl < 0) {
      if (this.buf.length - this.pos > INLINE_MAX) throw new ProtocolError('too big inline request');
      return false;
    }
    let end = nl;
    if (end > this.pos && this.buf[end - 1] === CR) end--;
    const args = splitInline(this.buf, this.pos, end);
    this.pos = nl + 1;
    if (args === null) throw new ProtocolError('unbalanced quotes in request');
    if (args.length > 0) out.push(args);
    return true;
  }

  /** Index of the CR that ends the line at pos, or null when the line is not complete yet. */
  private readLine(tooBig: string): number | null {
    const cr = this.buf.indexOf(CR, this.pos);
    if (cr < 0 || cr + 1 >= this.buf.length) {
      if (this.buf.length - this.pos > INLINE_MAX) throw new ProtocolError(tooBig);
      return null;
    }
    if (cr - this.pos > INLINE_MAX) throw new ProtocolError(tooBig);
    if (this.buf[cr + 1] !== LF) throw new ProtocolError("expected '\\r\\n' after length");
    return cr;
  }

  private checkQueryBuffer(len: number): void {
    if (this.commandBytes + len > this.limits.maxQueryBuffer) {
      throw new ProtocolError('query buffer limit exceeded');
    }
  }

  private finish(out: Args[]): void {
    out.push(this.args);
    this.args = [];
    this.remaining = -1;
  }
}

const EMPTY = Buffer.alloc(0);

function checkCrlf(buf: Buffer, at: number): void {
  if (buf[at] !== CR || buf[at + 1] !== LF) throw new ProtocolError("expected '\\r\\n' after bulk data");
}

/** Parses a decimal length between start and end; null when it is not a plain integer. */
function parseLength(buf: Buffer, start: number, end: number): number | null {
  if (start >= end || end - start > 11) return null;
  let i = start;
  let negative = false;
  if (buf[i] === 0x2d /* '-' */) {
    negative = true;
    i++;
    if (i === end) return null;
  }
  let n = 0;
  for (; i < end; i++) {
    const d = buf[i] - 0x30;
    if (d < 0 || d > 9) return null;
    n = n * 10 + d;
  }
  return negative ? -n : n;
}

/**
 * Splits an inline command the way Redis' sdssplitargs does: whitespace separates arguments,
 * "double quotes" understand \n \r \t \b \a \\ \" and \xHH, 'single quotes' only \'.
 * Returns null on unbalanced quotes.
 */
export function splitInline(buf: Buffer, start: number, end: number): Args | null {
  const args: Args = [];
  let i = start;
  const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0b || c === 0x0c;
  for (;;) {
    while (i < end && isSpace(buf[i])) i++;
    if (i >= end) return args;
    const cur: number[] = [];
    let inDouble = false;
    let inSingle = false;
    for (;;) {
      if (inDouble) {
        if (i >= end) return null;
        const c = buf[i];
        if (c === 0x5c /* \ */ && i + 3 < end && buf[i + 1] === 0x78 /* x */ && isHex(buf[i + 2]) && isHex(buf[i + 3])) {
          cur.push(hexVal(buf[i + 2]) * 16 + hexVal(buf[i + 3]));
          i += 4;
        } else if (c === 0x5c && i + 1 < end) {
          const e = buf[i + 1];
          cur.push(ESCAPES.get(e) ?? e);
          i += 2;
        } else if (c === 0x22 /* " */) {
          // A closing quote must be followed by a space or the end.
          if (i + 1 < end && !isSpace(buf[i + 1])) return null;
          i++;
          break;
        } else {
          cur.push(c);
          i++;
        }
      } else if (inSingle) {
        if (i >= end) return null;
        const c = buf[i];
        if (c === 0x5c && i + 1 < end && buf[i + 1] === 0x27 /* ' */) {
          cur.push(0x27);
          i += 2;
        } else if (c === 0x27) {
          if (i + 1 < end && !isSpace(buf[i + 1])) return null;
          i++;
          break;
        } else {
          cur.push(c);
          i++;
        }
      } else {
        if (i >= end) break;
        const c = buf[i];
        // Unlike the blanks skipped between arguments, only these end an unquoted argument.
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) break;
        if (c === 0x22) inDouble = true;
        else if (c === 0x27) inSingle = true;
        else cur.push(c);
        i++;
      }
    }
    args.push(Buffer.from(cur));
  }
}

const ESCAPES = new Map<number, number>([
  [0x6e, 0x0a], // n
  [0x72, 0x0d], // r
  [0x74, 0x09], // t
  [0x62, 0x08], // b
  [0x61, 0x07], // a
]);

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

function hexVal(c: number): number {
  if (c <= 0x39) return c - 0x30;
  if (c >= 0x61) return c - 0x61 + 10;
  return c - 0x41 + 10;
}
