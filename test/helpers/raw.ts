/** A raw TCP client for exact-byte assertions on replies. */
import { Socket } from 'node:net';

/** Encodes a command as a RESP multibulk. */
export function resp(...args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

export class RawClient {
  private readonly socket = new Socket();
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;

  static async connect(port: number): Promise<RawClient> {
    const c = new RawClient();
    await new Promise<void>((resolve, reject) => {
      c.socket.once('error', reject);
      c.socket.connect(port, '127.0.0.1', () => {
        c.socket.off('error', reject);
        resolve();
      });
    });
    return c;
  }

  private constructor() {
    this.socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  write(data: Buffer | string): void {
    this.socket.write(data);
  }

  /** Reads exactly `n` complete RESP replies and returns their raw bytes, one string each. */
  async replies(n: number, timeoutMs = 10_000): Promise<string[]> {
    const out: string[] = [];
    const deadline = Date.now() + timeoutMs;
    while (out.length < n) {
      const end = replyEnd(this.buf, 0);
      if (end > 0) {
        out.push(this.buf.subarray(0, end).toString('latin1'));
        this.buf = this.buf.subarray(end);
        continue;
      }
      if (this.closed) throw new Error(`connection closed after ${out.length} of ${n} replies: ${out.join('|')}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${out.length} of ${n} replies`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return out;
  }

  async reply(): Promise<string> {
    return (await this.replies(1))[0];
  }

  /** Everything the server sends until it closes the connection. */
  async untilClosed(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error(`still open after ${timeoutMs} ms; got ${this.buf.toString('latin1')}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.buf.toString('latin1');
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** End offset of the complete reply starting at `pos`, or -1 when it is not complete. */
export function replyEnd(buf: Buffer, pos: number): number {
  if (pos >= buf.length) return -1;
  const lineEnd = buf.indexOf('\r\n', pos);
  if (lineEnd < 0) return -1;
  const type = String.fromCharCode(buf[pos]);
  const head = buf.subarray(pos + 1, lineEnd).toString('latin1');
  const after = lineEnd + 2;
  switch (type) {
    case '+': case '-': case ':': case '_': case ',': case '#': case '(':
      return after;
    case '$': case '=': case '!': {
      const len = Number(head);
      if (len < 0) return after;
      return buf.length >= after + len + 2 ? after + len + 2 : -1;
    }
    case '*': case '~': case '>': case '%': case '|': {
      let count = Number(head);
      if (count < 0) return after;
      if (type === '%' || type === '|') count *= 2;
      let p = after;
      for (let i = 0; i < count; i++) {
        p = replyEnd(buf, p);
        if (p < 0) return -1;
      }
      return p;
    }
    default:
      throw new Error(`not a RESP reply at ${pos}: ${JSON.stringify(buf.subarray(pos, pos + 40).toString('latin1'))}`);
  }
}
