/**
 * Reply values and their RESP2/RESP3 encoding.
 *
 * The common shapes are plain JavaScript values so handlers allocate nothing for them:
 * Buffer and string are bulk strings, number is an integer, null is the null bulk, an array is an
 * array. The rarer shapes are small classes.
 */

export class SimpleString {
  constructor(readonly value: string) {}
}

/** An error reply; `message` starts with its code, e.g. "ERR wrong number of arguments …". */
export class ErrorReply {
  constructor(readonly message: string) {}
  get code(): string {
    const space = this.message.indexOf(' ');
    return space < 0 ? this.message : this.message.slice(0, space);
  }
}

/** A map in RESP3; a flat array of alternating keys and values in RESP2. */
export class RespMap {
  constructor(readonly entries: ReadonlyArray<readonly [Reply, Reply]>) {}
}

/** A set in RESP3; an array in RESP2. */
export class RespSet {
  constructor(readonly items: readonly Reply[]) {}
}

/** Verbatim text in RESP3 (INFO, CLIENT INFO); a bulk string in RESP2. */
export class Verbatim {
  constructor(readonly text: string) {}
}

/** A boolean in RESP3 (`#t`/`#f`); the integer 1 or 0 in RESP2 (Lua scripts after redis.setresp(3)). */
export class RespBoolean {
  constructor(readonly value: boolean) {}
}

/** A double in RESP3 (`,`); a bulk string in RESP2. `text` is its printed form ("%.17g"). */
export class RespDouble {
  constructor(readonly text: string) {}
}

/**
 * Where a streamed bulk's bytes come from: the length is known before the first byte, the pieces
 * are pulled one at a time as the socket drains, and release() is called once, however it ends.
 */
export interface BulkSource {
  readonly length: number;
  /** The next piece, or null after the last. */
  next(): Promise<Buffer | null>;
  release(): void;
}

/**
 * A bulk string too large to hold in memory (a value stored in chunks): server/connection.ts
 * writes it to the socket piece by piece with backpressure. Only a command's whole reply can be
 * one; the encoder refuses it anywhere else (inside an array, a transaction, a script).
 */
export class StreamedBulk {
  constructor(readonly source: BulkSource) {}
}

/**
 * A reply too large to build at once whose pieces are already RESP (HGETALL of a huge namespace:
 * the first piece carries the array's header, the others its elements). Written as a StreamedBulk
 * is, piece by piece with backpressure, without a bulk's framing; `length` is 0 (not known).
 */
export class StreamedArray extends StreamedBulk {}

/**
 * A bulk string whose bytes are lent by their owner (a cached large value, storage/read-cache.ts)
 * as `pieces`, to be written without a copy: the owner may reuse that memory after release(),
 * which whoever writes the reply calls once the socket has taken the bytes (ReplyEncoder.release),
 * or when the reply is dropped unsent. Releasing twice is harmless.
 */
export class PinnedBulk {
  constructor(
    readonly pieces: readonly Buffer[],
    readonly length: number,
    readonly release: () => void,
  ) {}
}

/** The header of a bulk of `length` bytes (what precedes a StreamedBulk's pieces). */
export function bulkHeader(length: number): Buffer {
  return Buffer.from(`$${length}\r\n`, 'latin1');
}

/** The null array (`*-1` in RESP2, `_` in RESP3). */
export const NULL_ARRAY = Symbol('null-array');

/** Sends nothing: for commands that answer by closing the connection (SHUTDOWN). */
export const NO_REPLY = Symbol('no-reply');

export type Reply =
  | null
  | typeof NO_REPLY
  | typeof NULL_ARRAY
  | number
  /** An integer beyond 2^53 (INCR's 64-bit counters). */
  | bigint
  | string
  | Buffer
  | SimpleString
  | ErrorReply
  | RespMap
  | RespSet
  | Verbatim
  | RespBoolean
  | RespDouble
  | StreamedBulk
  | PinnedBulk
  | readonly Reply[];

export type ProtocolVersion = 2 | 3;

export const OK = new SimpleString('OK');
export const PONG = new SimpleString('PONG');
export const QUEUED = new SimpleString('QUEUED');

const SLAB_SIZE = 64 * 1024;
/** Bulks at least this big are handed to the socket as they are instead of being copied. */
const ZERO_COPY_MIN = 16 * 1024;
const CRLF = Buffer.from('\r\n');
const OK_BYTES = Buffer.from('+OK\r\n');
/** Prefix bytes of the replies written with writeLength. */
const DOLLAR = 0x24;
const COLON = 0x3a;

/**
 * Encodes replies into a slab of memory shared by many small replies, so a pipeline of 10,000
 * small replies becomes a few large socket writes. Slab regions handed out are never reused.
 */
export class ReplyEncoder {
  private slab = Buffer.allocUnsafe(SLAB_SIZE);
  private start = 0;
  private off = 0;
  private chunks: Buffer[] = [];
  private chunkBytes = 0;
  /** Lent bulks among the chunks not yet taken (PinnedBulk). */
  private lent: PinnedBulk[] = [];

  /** Bytes encoded and not yet taken. */
  get pending(): number {
    return this.chunkBytes + (this.off - this.start);
  }

  /**
   * Releases for the lent bulks in what take() returned last: to be called once the socket has
   * taken those buffers (the callback of the last write), or at once if they are dropped. Null
   * when there are none.
   */
  takeRelease(): (() => void) | null {
    if (this.lent.length === 0) return null;
    const lent = this.lent;
    this.lent = [];
    return () => {
      for (const b of lent) b.release();
    };
  }

  /** Returns what has been encoded since the last call, ready for socket writes. */
  take(): Buffer[] {
    this.cutSlab();
    const out = this.chunks;
    this.chunks = [];
    this.chunkBytes = 0;
    return out;
  }

  write(reply: Reply, proto: ProtocolVersion): void {
    if (reply === null) {
      this.ascii(proto === 3 ? '_\r\n' : '$-1\r\n');
    } else if (reply instanceof Buffer) {
      this.bulk(reply);
    } else if (reply === OK) {
      this.raw(OK_BYTES);
    } else if (typeof reply === 'number' && Number.isSafeInteger(reply) && reply >= 0) {
      this.writeLength(COLON, reply);
    } else if (typeof reply === 'number' || typeof reply === 'bigint') {
      this.ascii(`:${reply}\r\n`);
    } else if (typeof reply === 'string') {
      this.bulk(Buffer.from(reply, 'utf8'));
    } else if (reply instanceof SimpleString) {
      this.text(`+${reply.value}\r\n`);
    } else if (reply instanceof ErrorReply) {
      this.text(`-${reply.message.replace(/[\r\n]+/g, ' ')}\r\n`);
    } else if (Array.isArray(reply)) {
      this.ascii(`*${reply.length}\r\n`);
      for (const item of reply as readonly Reply[]) this.write(item, proto);
    } else if (reply instanceof RespMap) {
      this.ascii(proto === 3 ? `%${reply.entries.length}\r\n` : `*${reply.entries.length * 2}\r\n`);
      for (const [k, v] of reply.entries) {
        this.write(k, proto);
        this.write(v, proto);
      }
    } else if (reply instanceof RespSet) {
      this.ascii(`${proto === 3 ? '~' : '*'}${reply.items.length}\r\n`);
      for (const item of reply.items) this.write(item, proto);
    } else if (reply instanceof Verbatim) {
      if (proto === 3) {
        const body = Buffer.from(`txt:${reply.text}`, 'utf8');
        this.ascii(`=${body.length}\r\n`);
        this.raw(body);
        this.raw(CRLF);
      } else {
        this.bulk(Buffer.from(reply.text, 'utf8'));
      }
    } else if (reply instanceof RespBoolean) {
      this.ascii(proto === 3 ? (reply.value ? '#t\r\n' : '#f\r\n') : reply.value ? ':1\r\n' : ':0\r\n');
    } else if (reply instanceof RespDouble) {
      if (proto === 3) this.ascii(`,${reply.text}\r\n`);
      else this.bulk(Buffer.from(reply.text, 'latin1'));
    } else if (reply === NULL_ARRAY) {
      this.ascii(proto === 3 ? '_\r\n' : '*-1\r\n');
    } else if (reply instanceof PinnedBulk) {
      this.writeLength(DOLLAR, reply.length);
      for (const piece of reply.pieces) this.raw(piece);
      this.raw(CRLF);
      this.lent.push(reply);
    } else if (reply instanceof StreamedBulk) {
      // Only the connection can stream; nested in another reply there is no way to send it.
      reply.source.release();
      this.text('-ERR a value stored in chunks cannot be sent inside another reply\r\n');
    }
  }

  private bulk(data: Buffer): void {
    this.writeLength(DOLLAR, data.length);
    this.raw(data);
    this.raw(CRLF);
  }

  /**
   * `<prefix><n>\r\n` for a non-negative integer, written byte by byte: a bulk header or an
   * integer reply per command, without building a string and calling into C++ to copy it.
   */
  private writeLength(prefix: number, n: number): void {
    let digits = 1;
    for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
    this.ensure(digits + 3);
    const slab = this.slab;
    let at = this.off;
    slab[at++] = prefix;
    let end = at + digits;
    for (let x = n; end > at; x = Math.floor(x / 10)) slab[--end] = 0x30 + (x % 10);
    at += digits;
    slab[at++] = 0x0d;
    slab[at++] = 0x0a;
    this.off = at;
  }

  private ascii(s: string): void {
    this.ensure(s.length);
    this.off += this.slab.write(s, this.off, "latin1");
  }

  private text(s: string): void {
    const len = Buffer.byteLength(s, 'utf8');
    this.ensure(len);
    this.off += this.slab.write(s, this.off, "utf8");
  }

  private raw(data: Buffer): void {
    if (data.length >= ZERO_COPY_MIN) {
      this.cutSlab();
      this.chunks.push(data);
      this.chunkBytes += data.length;
      return;
    }
    this.ensure(data.length);
    if (data.length <= 16) {
      // A few bytes (CRLF, +OK): a loop beats a call into Buffer.copy.
      for (let i = 0; i < data.length; i++) this.slab[this.off + i] = data[i];
    } else {
      this.slab.set(data, this.off);
    }
    this.off += data.length;
  }

  private ensure(len: number): void {
    if (this.off + len <= this.slab.length) return;
    this.cutSlab();
    this.slab = Buffer.allocUnsafe(Math.max(SLAB_SIZE, len));
    this.start = 0;
    this.off = 0;
  }

  private cutSlab(): void {
    if (this.off > this.start) {
      this.chunks.push(this.slab.subarray(this.start, this.off));
      this.chunkBytes += this.off - this.start;
      this.start = this.off;
    }
  }
}

/** Encodes one reply to a single buffer; for tests and one-off writes. */
export function encodeReply(reply: Reply, proto: ProtocolVersion = 2): Buffer {
  const enc = new ReplyEncoder();
  enc.write(reply, proto);
  const out = Buffer.concat(enc.take());
  enc.takeRelease()?.();
  return out;
}
