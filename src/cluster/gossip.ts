/**
 * The cluster bus: a small gossip protocol on the `[cluster] port`.
 *
 * Wire format: one message per line, `<mac> <json>\n`. `<mac>` is the hex HMAC-SHA256 of the JSON
 * text under `[cluster] secret`, or `-` when no secret is configured. The JSON is
 * `{"t":"ping"|"pong","from":NodeRecord,"nodes":[NodeRecord…],"seen":"host"?}`: the sender's own
 * record, everything it knows about others, and (in a pong) the address it saw the pinger
 * connect from, so a node bound to 0.0.0.0 learns how others reach it.
 *
 * Every `gossip_interval_ms` a node pings every address it knows (its seeds and every learned
 * node); the pinged node answers with a pong on the same connection. Any message straight from a
 * node proves it is alive; a node silent for `node_timeout_ms` is flagged `fail` (see state.ts).
 * Lines that do not parse, do not validate or fail the HMAC are dropped and counted; they never
 * throw past this file.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, Socket, type Server } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import type { Logger } from '../observability/log.js';
import { SLOT_COUNT, type SlotRange } from './slots.js';
import { nodeIdFor, type ClusterState, type NodeRecord } from './state.js';

/** A gossip line longer than this is not ours: the connection is dropped. */
const MAX_LINE = 1024 * 1024;
const MAX_NODES = 1000;
/** Open inbound bus connections; peers need one each, more is someone else's doing. */
const MAX_INBOUND = 1024;

export interface GossipOptions {
  state: ClusterState;
  /** Host the bus listens on (the client `addr` host). */
  bindHost: string;
  port: number;
  seeds: readonly string[];
  intervalMs: number;
  secret: string | undefined;
  /** Whether this node's client host is fixed (advertise_addr or a specific bind address). */
  hostFixed: boolean;
  log: Logger;
}

interface Message {
  t: 'ping' | 'pong';
  from: NodeRecord;
  nodes: NodeRecord[];
  seen?: string;
}

/** One outbound link to a gossip address. */
interface Link {
  socket: Socket;
  connected: boolean;
  buf: string;
  nodeId: string | null;
}

export class GossipBus {
  private server: Server | null = null;
  private timer: NodeJS.Timeout | null = null;
  private failureTimer: NodeJS.Timeout | null = null;
  private readonly links = new Map<string, Link>();
  private readonly inbound = new Set<Socket>();
  /** Addresses that turned out to be this node (a seed list shared by every node). */
  private readonly selfAddrs = new Set<string>();
  private boundPort = 0;
  private stopped = false;

  constructor(private readonly opts: GossipOptions) {}

  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<number> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.opts.bindHost, port: this.opts.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.opts.log.error({ err: err.message }, 'cluster bus error'));
    const address = server.address();
    this.boundPort = typeof address === 'object' && address !== null ? address.port : this.opts.port;
    this.tick();
    this.timer = setInterval(() => this.tick(), this.opts.intervalMs);
    // Failures are checked more often than gossip is sent, so `fail` shows soon after the timeout.
    const checkEvery = Math.max(10, Math.min(this.opts.intervalMs, Math.floor(this.opts.state.nodeTimeoutMs / 10)));
    this.failureTimer = setInterval(() => this.opts.state.checkFailures(), checkEvery);
    this.timer.unref();
    this.failureTimer.unref();
    return this.boundPort;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    if (this.failureTimer !== null) clearInterval(this.failureTimer);
    for (const l of this.links.values()) l.socket.destroy();
    this.links.clear();
    for (const s of this.inbound) s.destroy();
    this.inbound.clear();
    const server = this.server;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // ---- sending ---------------------------------------------------------------------------------

  private tick(): void {
    if (this.stopped) return;
    const state = this.opts.state;
    state.checkFailures();
    const targets = new Map<string, string | null>();
    for (const seed of this.opts.seeds) targets.set(normalizeAddr(seed), null);
    for (const n of state.nodes()) {
      if (n.myself || n.host === '') continue;
      targets.set(`${hostForDial(n.host)}:${n.busPort}`, n.id);
    }
    for (const [addr, link] of this.links) {
      if (!targets.has(addr)) {
        link.socket.destroy();
        this.links.delete(addr);
      }
    }
    const now = Date.now();
    for (const [addr, nodeId] of targets) {
      if (this.selfAddrs.has(addr)) continue;
      const link = this.links.get(addr) ?? this.connect(addr, nodeId);
      if (link.connected) this.ping(link);
      else if (nodeId !== null) {
        // A ping that cannot even be sent is still an unanswered ping (CLUSTER NODES' ping-sent).
        const n = state.node(nodeId);
        if (n !== undefined && n.pingSent === 0) n.pingSent = now;
      }
    }
  }

  private connect(addr: string, nodeId: string | null): Link {
    const { host, port } = splitAddr(addr);
    const socket = new Socket();
    const link: Link = { socket, connected: false, buf: '', nodeId };
    this.links.set(addr, link);
    socket.setNoDelay(true);
    socket.setTimeout(Math.max(1000, this.opts.state.nodeTimeoutMs));
    socket.on('timeout', () => socket.destroy());
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.links.get(addr) === link) this.links.delete(addr);
      if (link.nodeId !== null) {
        const n = this.opts.state.node(link.nodeId);
        if (n !== undefined) n.linked = false;
      }
    });
    const decoder = new StringDecoder('utf8'); // a character may straddle two chunks
    socket.on('data', (d: Buffer) => {
      link.buf = this.consume(link.buf + decoder.write(d), socket, (msg) => {
        if (msg.from.id === this.opts.state.myself.id && msg.from.inc === this.opts.state.myself.inc) {
          // We dialled ourselves (a seed list shared by every node): never again.
          this.selfAddrs.add(addr);
          socket.destroy();
          return;
        }
        link.nodeId = msg.from.id;
        if (msg.t === 'pong') this.pong(msg);
      });
    });
    socket.connect(port, host, () => {
      link.connected = true;
      this.ping(link);
    });
    return link;
  }

  private ping(link: Link): void {
    const state = this.opts.state;
    if (link.nodeId !== null) {
      const n = state.node(link.nodeId);
      if (n !== undefined && n.pingSent === 0) n.pingSent = Date.now();
    }
    this.send(link.socket, { t: 'ping', from: state.selfRecord(), nodes: this.others() });
  }

  private pong(msg: Message): void {
    const state = this.opts.state;
    const n = state.node(msg.from.id);
    if (n !== undefined) {
      n.pingSent = 0;
      n.pongReceived = Date.now();
      n.linked = true;
    }
    // Learned once: peers on different networks may see different addresses (advertise_addr
    // settles that), and flipping between them would only churn everyone's view.
    if (!this.opts.hostFixed && msg.seen !== undefined && msg.seen !== '' && state.myself.host === '') {
      state.setSelfAddress(msg.seen, state.myself.port, state.myself.busPort);
      this.opts.log.info({ host: msg.seen }, 'cluster: learned this node\'s address from a peer');
    }
  }

  private others(): NodeRecord[] {
    return this.opts.state
      .nodes()
      .filter((n) => !n.myself)
      .map((n) => ({ id: n.id, name: n.name, host: n.host, port: n.port, busPort: n.busPort, slots: n.slots, inc: n.inc, ver: n.ver }));
  }

  private send(socket: Socket, msg: Message): void {
    if (socket.destroyed || !socket.writable) return;
    const json = JSON.stringify(msg);
    socket.write(`${this.mac(json)} ${json}\n`);
    this.opts.state.stats.messagesSent++;
    this.opts.state.stats.sentByType[msg.t]++;
  }

  private mac(json: string): string {
    const secret = this.opts.secret;
    return secret === undefined ? '-' : createHmac('sha256', secret).update(json).digest('hex');
  }

  // ---- receiving -------------------------------------------------------------------------------

  private accept(socket: Socket): void {
    if (this.stopped || this.inbound.size >= MAX_INBOUND) {
      socket.destroy();
      return;
    }
    this.inbound.add(socket);
    socket.setNoDelay(true);
    // Peers ping every interval; a connection silent for this long is not a peer's.
    socket.setTimeout(Math.max(10_000, 2 * this.opts.state.nodeTimeoutMs, 4 * this.opts.intervalMs));
    socket.on('timeout', () => socket.destroy());
    socket.on('error', () => {});
    socket.on('close', () => this.inbound.delete(socket));
    let buf = '';
    const decoder = new StringDecoder('utf8');
    socket.on('data', (d: Buffer) => {
      buf = this.consume(buf + decoder.write(d), socket, (msg) => {
        if (msg.t === 'ping') {
          const seen = normalizeHost(socket.remoteAddress ?? '');
          this.send(socket, { t: 'pong', from: this.opts.state.selfRecord(), nodes: this.others(), seen });
        }
      });
    });
  }

  /** Handles every complete line in `buf`; returns what is left. */
  private consume(buf: string, socket: Socket, then: (msg: Message) => void): string {
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        const msg = this.verify(line);
        if (msg === null) continue;
        this.opts.state.stats.messagesReceived++;
        this.opts.state.stats.receivedByType[msg.t]++;
        this.absorb(msg, socket);
        then(msg);
      } catch (err) {
        this.opts.state.stats.malformed++;
        this.opts.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'cluster bus: message handling failed');
      }
    }
    if (buf.length > MAX_LINE) {
      this.opts.state.stats.malformed++;
      this.opts.log.warn({ peer: socket.remoteAddress }, 'cluster bus: oversized line; connection dropped');
      socket.destroy();
      return '';
    }
    return buf;
  }

  /** The message in a line, or null (counted) when it fails the HMAC or does not validate. */
  private verify(line: string): Message | null {
    const state = this.opts.state;
    const space = line.indexOf(' ');
    if (space < 0) {
      state.stats.malformed++;
      return null;
    }
    const mac = line.slice(0, space);
    const json = line.slice(space + 1);
    if (this.opts.secret !== undefined) {
      const want = Buffer.from(this.mac(json), 'hex');
      const got = /^[0-9a-f]{64}$/.test(mac) ? Buffer.from(mac, 'hex') : Buffer.alloc(0);
      if (got.length !== want.length || !timingSafeEqual(got, want)) {
        state.stats.authFailures++;
        if (state.stats.authFailures === 1 || state.stats.authFailures % 100 === 0) {
          this.opts.log.warn({ dropped: state.stats.authFailures }, 'cluster bus: message failed authentication; dropped');
        }
        return null;
      }
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch {
      state.stats.malformed++;
      return null;
    }
    const msg = parseMessage(parsed);
    if (msg === null) {
      state.stats.malformed++;
      if (state.stats.malformed === 1 || state.stats.malformed % 100 === 0) {
        this.opts.log.warn({ malformed: state.stats.malformed }, 'cluster bus: malformed message; dropped');
      }
    }
    return msg;
  }

  private absorb(msg: Message, socket: Socket): void {
    const state = this.opts.state;
    if (msg.from.id === state.myself.id && msg.from.inc === state.myself.inc) return;
    const from = { ...msg.from };
    // A node that does not know its own host is reached at the address its message came from.
    if (from.host === '') from.host = normalizeHost(socket.remoteAddress ?? '');
    state.merge(from, true);
    for (const r of msg.nodes) {
      if (r.id === from.id) continue;
      state.merge(r, false);
    }
  }
}

// ---- validation ------------------------------------------------------------------------------

function isInt(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

function parseRecord(v: unknown): NodeRecord | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const r = v as Record<string, unknown>;
  if (typeof r.name !== 'string' || r.name.length === 0 || r.name.length > 256) return null;
  if (typeof r.id !== 'string' || r.id !== nodeIdFor(r.name)) return null;
  if (typeof r.host !== 'string' || r.host.length > 255 || /[\s@,]/.test(r.host)) return null;
  if (!isInt(r.port, 0, 65535) || !isInt(r.busPort, 0, 65535)) return null;
  if (!isInt(r.inc, 0, Number.MAX_SAFE_INTEGER) || !isInt(r.ver, 0, Number.MAX_SAFE_INTEGER)) return null;
  if (!Array.isArray(r.slots) || r.slots.length > SLOT_COUNT) return null;
  const slots: SlotRange[] = [];
  for (const s of r.slots as unknown[]) {
    if (!Array.isArray(s) || s.length !== 2) return null;
    const [a, b] = s as unknown[];
    if (!isInt(a, 0, SLOT_COUNT - 1) || !isInt(b, a, SLOT_COUNT - 1)) return null;
    slots.push([a, b]);
  }
  return { id: r.id, name: r.name, host: r.host, port: r.port, busPort: r.busPort, slots, inc: r.inc, ver: r.ver };
}

/** A validated message, or null. Exported for the unit tests. */
export function parseMessage(v: unknown): Message | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const m = v as Record<string, unknown>;
  if (m.t !== 'ping' && m.t !== 'pong') return null;
  const from = parseRecord(m.from);
  if (from === null) return null;
  if (!Array.isArray(m.nodes) || m.nodes.length > MAX_NODES) return null;
  const nodes: NodeRecord[] = [];
  for (const n of m.nodes as unknown[]) {
    const r = parseRecord(n);
    if (r === null) return null;
    nodes.push(r);
  }
  if (m.seen !== undefined && (typeof m.seen !== 'string' || m.seen.length > 255)) return null;
  return { t: m.t, from, nodes, ...(typeof m.seen === 'string' ? { seen: m.seen } : {}) };
}

// ---- addresses -------------------------------------------------------------------------------

function normalizeHost(h: string): string {
  return h.startsWith('::ffff:') ? h.slice(7) : h;
}

function hostForDial(h: string): string {
  return h.includes(':') ? `[${h}]` : h;
}

function normalizeAddr(addr: string): string {
  const { host, port } = splitAddr(addr);
  return `${hostForDial(normalizeHost(host))}:${port}`;
}

function splitAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  let host = addr.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(addr.slice(i + 1)) };
}
