/**
 * A small RESP2 client over one TCP connection, for what this server sends to other servers:
 * MIGRATE's RESTOREs and `blobasaur import`'s reads. Commands may be pipelined; replies come back
 * in order. Every wait is bounded by `timeoutMs` (no reply, no connect: an RespClientError with
 * `kind` 'timeout'), and no reply may be larger than `maxReplyBytes`.
 */
import { connect, type Socket } from 'node:net';

export type RespValue = null | number | Buffer | RespSimple | RespError | RespValue[];

export class RespSimple {
  constructor(readonly value: string) {}
}

export class RespError {
  constructor(readonly message: string) {}
}

export class RespClientError extends Error {
  constructor(
    readonly kind: 'connect' | 'timeout' | 'closed' | 'protocol',
    message: string,
  ) {
    super(message);
  }
}

export interface RespClientOptions {
  host: string;
  port: number;
  timeoutMs: number;
  /** Largest bulk string accepted from the server (default 512 MiB + 1 KiB). */
  maxReplyBytes?: number;
}

/** Encodes a command as a RESP multibulk, without copying the arguments. */
export function encodeCommand(args: readonly (string | Buffer)[]): Buffer[] {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return parts;
}

/** Parses one reply at `pos`; undefined when the buffer does not hold all of it yet. */
export function parseReply(buf: Buffer, pos: number, maxBulk: number): { value: RespValue; end: number } | undefined {
  const nl = buf.indexOf('\r\n', pos);
  if (nl < 0) {
    if (buf.length - pos > 64 * 1024) throw new RespClientError('protocol', 'reply line too long');
    return undefined;
  }
  const line = buf.toString('latin1', pos + 1, nl);
  const next = nl + 2;
  switch (buf[pos]) {
    case 0x2b: // +
      return { value: new RespSimple(line), end: next };
    case 0x2d: // -
      return { value: new RespError(line), end: next };
    case 0x3a: // :
      return { value: Number(line), end: next };
    case 0x24: {
      // $
      const n = Number(line);
      if (!Number.isInteger(n) || n < -1) throw new RespClientError('protocol', `bad bulk length ${line}`);
      if (n === -1) return { value: null, end: next };
      if (n > maxBulk) throw new RespClientError('protocol', `reply of ${n} bytes is larger than allowed (${maxBulk})`);
      if (buf.length < next + n + 2) return undefined;
      return { value: Buffer.from(buf.subarray(next, next + n)), end: next + n + 2 };
    }
    case 0x2a: {
      // *
      const n = Number(line);
      if (!Number.isInteger(n) || n < -1 || n > 1 << 24) throw new RespClientError('protocol', `bad array length ${line}`);
      if (n === -1) return { value: null, end: next };
      const items: RespValue[] = [];
      let p = next;
      for (let i = 0; i < n; i++) {
        const item = parseReply(buf, p, maxBulk);
        if (item === undefined) return undefined;
        items.push(item.value);
        p = item.end;
      }
      return { value: items, end: p };
    }
    default:
      throw new RespClientError('protocol', `unexpected reply type byte ${buf[pos]}`);
  }
}

export class RespClient {
  private buf: Buffer = Buffer.alloc(0);
  /** Pieces that arrived while a known-size reply is incomplete: joined once, when all are here. */
  private pieces: Buffer[] = [];
  private pieceBytes = 0;
  private need = 0;
  private readonly waiting: { resolve: (v: RespValue) => void; reject: (e: Error) => void }[] = [];
  private failure: RespClientError | null = null;
  private readonly maxBulk: number;

  private constructor(
    private readonly socket: Socket,
    timeoutMs: number,
    maxReplyBytes: number,
  ) {
    this.maxBulk = maxReplyBytes;
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (err) => this.fail(new RespClientError('closed', err.message)));
    socket.on('close', () => this.fail(new RespClientError('closed', 'connection closed')));
    socket.setTimeout(timeoutMs, () => {
      if (this.waiting.length > 0) this.fail(new RespClientError('timeout', `no reply in ${timeoutMs} ms`));
    });
  }

  static connect(opts: RespClientOptions): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: opts.host, port: opts.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new RespClientError('timeout', `no connection to ${opts.host}:${opts.port} in ${opts.timeoutMs} ms`));
      }, opts.timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new RespClientError('connect', err.message));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new RespClient(socket, opts.timeoutMs, opts.maxReplyBytes ?? 512 * 1024 * 1024 + 1024));
      });
    });
  }

  /** Sends one command; its reply is the next one `send` resolves with, in order. */
  send(args: readonly (string | Buffer)[]): Promise<RespValue> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const reply = new Promise<RespValue>((resolve, reject) => this.waiting.push({ resolve, reject }));
    // Pipelined callers stop awaiting at the first failure; the replies after it fail unobserved.
    reply.catch(() => {});
    for (const part of encodeCommand(args)) this.socket.write(part);
    return reply;
  }

  /** Sends a command and waits for its reply; an error reply is returned, not thrown. */
  call(...args: (string | Buffer)[]): Promise<RespValue> {
    return this.send(args);
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(d: Buffer): void {
    this.pieces.push(d);
    this.pieceBytes += d.length;
    if (this.buf.length + this.pieceBytes < this.need) return;
    this.buf = Buffer.concat([this.buf, ...this.pieces]);
    this.pieces = [];
    this.pieceBytes = 0;
    this.need = 0;
    let pos = 0;
    try {
      while (pos < this.buf.length && this.waiting.length > 0) {
        const r = parseReply(this.buf, pos, this.maxBulk);
        if (r === undefined) {
          this.need = bulkNeeds(this.buf, pos) - pos;
          break;
        }
        pos = r.end;
        this.waiting.shift()!.resolve(r.value);
      }
    } catch (err) {
      this.fail(err instanceof RespClientError ? err : new RespClientError('protocol', String(err)));
      return;
    }
    this.buf = pos === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(pos);
  }


  private fail(err: RespClientError): void {
    if (this.failure !== null) return;
    this.failure = err;
    for (const w of this.waiting.splice(0)) w.reject(err);
    this.socket.destroy();
  }
}

/** Where an incomplete bulk reply at `pos` ends (so big replies are joined once); 0 if unknown. */
function bulkNeeds(buf: Buffer, pos: number): number {
  if (buf[pos] !== 0x24) return 0;
  const nl = buf.indexOf('\r\n', pos);
  if (nl < 0) return 0;
  const n = Number(buf.toString('latin1', pos + 1, nl));
  return Number.isInteger(n) && n > 0 ? nl + 2 + n + 2 : 0;
}
