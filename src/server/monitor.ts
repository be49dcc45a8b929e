/**
 * MONITOR: every command the server executes is shown to the clients in monitor mode, one line
 * each, in Redis' format: `+<sec>.<usec> [<db> <addr>] "arg" "arg"…`. Passwords given to AUTH and
 * HELLO … AUTH are shown as "(redacted)", as Redis does; admin commands are not shown at all.
 */
import { SimpleString } from '../protocol/reply.js';
import { parseInteger } from '../commands/args.js';
import type { ClientState } from '../commands/types.js';

const REDACTED = Buffer.from('(redacted)');

export class MonitorFeed {
  private readonly monitors = new Set<ClientState>();

  /** `verify` is the password check, to redact HELLO's arguments only as far as Redis reads them. */
  constructor(private readonly verify: (user: Buffer, password: Buffer) => boolean) {}

  /** Whether anyone monitors: the only cost of MONITOR when nobody does. */
  get active(): boolean {
    return this.monitors.size > 0;
  }

  add(client: ClientState): void {
    this.monitors.add(client);
  }

  remove(client: ClientState): void {
    this.monitors.delete(client);
  }

  /** Shows one executed command to every monitor. */
  feed(client: ClientState, args: readonly Buffer[]): void {
    const t = performance.timeOrigin + performance.now();
    const sec = Math.floor(t / 1000);
    const usec = Math.floor((t - sec * 1000) * 1000);
    const shown = redact(args, this.verify).map(repr).join(' ');
    const line = new SimpleString(`${sec}.${String(usec).padStart(6, '0')} [${client.db} ${client.addr}] ${shown}`);
    for (const m of this.monitors) m.push?.(line);
  }
}

/** The arguments as MONITOR shows them: AUTH's and HELLO … AUTH's credentials replaced. */
export function redact(args: readonly Buffer[], verify: (user: Buffer, password: Buffer) => boolean): readonly Buffer[] {
  const name = args[0].toString('latin1').toLowerCase();
  if (name === 'auth') {
    // Redis redacts before checking anything but the argument count.
    return args.length > 3 ? args : [args[0], ...args.slice(1).map(() => REDACTED)];
  }
  if (name !== 'hello' || args.length < 2) return args;
  const v = parseInteger(args[1]);
  if (v === null || (v !== 2 && v !== 3)) return args;
  const out = [...args];
  // Redis redacts as it reads HELLO's options, and stops reading at the first one it refuses.
  for (let j = 2; j < args.length; j++) {
    const opt = args[j].toString('latin1').toLowerCase();
    const more = args.length - 1 - j;
    if (opt === 'auth' && more >= 2) {
      out[j + 1] = REDACTED;
      out[j + 2] = REDACTED;
      if (!verify(args[j + 1], args[j + 2])) break;
      j += 2;
    } else if (opt === 'setname' && more >= 1) {
      j++;
    } else {
      break;
    }
  }
  return out;
}

/** One argument quoted as Redis' sdscatrepr quotes it. */
export function repr(arg: Buffer): string {
  let s = '"';
  for (const c of arg) {
    if (c === 0x5c || c === 0x22) s += `\\${String.fromCharCode(c)}`;
    else if (c === 0x0a) s += '\\n';
    else if (c === 0x0d) s += '\\r';
    else if (c === 0x09) s += '\\t';
    else if (c === 0x07) s += '\\a';
    else if (c === 0x08) s += '\\b';
    else if (c >= 0x20 && c <= 0x7e) s += String.fromCharCode(c);
    else s += `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return `${s}"`;
}
