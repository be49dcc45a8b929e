/**
 * The few RESP2 replies a replica reads from its primary (simple, error, integer, bulk, array),
 * one command at a time over one socket. Bulk replies are bounded by what the primary sends
 * (chunks of at most CHUNK_BYTES, stream replies of at most a few MiB plus one batch).
 */
import { Socket } from 'node:net';

export type RespValue = string | number | Buffer | null | RespValue[] | RespError;

export class RespError {
  constructor(readonly message: string) {}
}

export class RespClient {
  private buf: Buffer = Buffer.alloc(0);
  private waiting: { resolve: (v: RespValue) => void; reject: (e: Error) => void } | null = null;
  private closed: Error | null = null;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      this.pump();
    });
    const fail = (err: Error): void => {
      this.closed ??= err;
      const w = this.waiting;
      this.waiting = null;
      w?.reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection to the primary closed')));
  }

  static connect(host: string, port: number, timeoutMs = 3000): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const s = new Socket();
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`connecting to ${host}:${port} timed out`));
      }, timeoutMs);
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      s.connect(port, host, () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(new RespClient(s));
      });
    });
  }

  /** Sends one command and resolves with its reply (a RespError for an error reply). */
  call(...args: (string | number | Buffer)[]): Promise<RespValue> {
    if (this.closed !== null) return Promise.reject(this.closed);
    if (this.waiting !== null) return Promise.reject(new Error('one command at a time'));
    const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
    for (const a of args) {
      const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
      parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
    }
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.socket.write(Buffer.concat(parts));
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private pump(): void {
    if (this.waiting === null) return;
    const parsed = parseReply(this.buf, 0);
    if (parsed === null) return;
    this.buf = this.buf.subarray(parsed[1]);
    const w = this.waiting;
    this.waiting = null;
    w.resolve(parsed[0]);
  }
}

/** One reply at `pos`: [value, next position], or null when incomplete. */
function parseReply(buf: Buffer, pos: number): [RespValue, number] | null {
  const eol = buf.indexOf('\r\n', pos);
  if (eol < 0) return null;
  const type = buf[pos];
  const line = buf.toString('latin1', pos + 1, eol);
  switch (type) {
    case 0x2b: // +
      return [line, eol + 2];
    case 0x2d: // -
      return [new RespError(line), eol + 2];
    case 0x3a: // :
      return [Number(line), eol + 2];
    case 0x24: {
      // $
      const n = Number(line);
      if (n < 0) return [null, eol + 2];
      if (buf.length < eol + 2 + n + 2) return null;
      return [buf.subarray(eol + 2, eol + 2 + n), eol + 2 + n + 2];
    }
    case 0x2a: {
      // *
      const n = Number(line);
      if (n < 0) return [null, eol + 2];
      const items: RespValue[] = [];
      let p = eol + 2;
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, p);
        if (r === null) return null;
        items.push(r[0]);
        p = r[1];
      }
      return [items, p];
    }
    default:
      throw new Error(`unexpected reply type ${String.fromCharCode(type)}`);
  }
}
