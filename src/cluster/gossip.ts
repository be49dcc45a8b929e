/**
 * The cluster bus: a small gossip protocol on the bus address (`[cluster] bus_addr`).
 *
 * Wire format: one message per line, `<mac> <json>\n`. `<mac>` is the hex HMAC-SHA256 of the
 * JSON text under `[cluster] secret`, or `-` when no secret is configured. The JSON is
 * `{"t":"ping"|"pong","from":NodeRecord,"nodes":[NodeRecord…],"to":id|"","ts":ms,"nonce":hex,
 * "seen":"host"?}`: the sender's own record, everything it knows about others, the node it is
 * addressed to ('' when the sender does not know yet: a seed), when it was sent, a random nonce,
 * and (in a pong) the address it saw the pinger connect from, so a node bound to 0.0.0.0 learns
 * how others reach it.
 *
 * Every `gossip_interval_ms` a node pings every address it knows (its seeds and every learned
 * node); the pinged node answers with a pong on the same connection. A message addressed to
 * this node proves its sender is alive; a node silent for `node_timeout_ms` is flagged `fail`.
 *
 * What a line goes through, cheapest and most hostile first: the line-size cap (checked before
 * anything is buffered), the HMAC (constant-time compare), JSON and field validation, the
 * timestamp window, the recipient, the nonce cache, then the sender's incarnation. A message
 * dropped anywhere is counted; nothing throws past this file. Connections that have not yet sent
 * one good message are few per address, few in total, and short-lived.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isLoopbackHost } from '../config/addr.js';
import { createServer, Socket, type Server } from 'node:net';
import type { Logger } from '../observability/log.js';
import { SLOT_COUNT, type SlotRange } from './slots.js';
import { MAX_KNOWN_NODES, NODE_HOST, NODE_NAME, nodeIdFor, type ClusterState, type NodeRecord } from './state.js';

/** A gossip line longer than this is not ours: the connection is dropped before buffering more. */
export const MAX_LINE = 512 * 1024;
/** Node records in one message. */
const MAX_RECORDS = MAX_KNOWN_NODES;
/** Inbound bus connections in total; peers need one each. */
const MAX_INBOUND = MAX_KNOWN_NODES + 64;
/** Inbound connections from one address (several nodes may share a machine). */
const MAX_PER_ADDRESS = 128;
/** Inbound connections that have not yet sent a good message: in total, and per address. */
const MAX_PENDING = 64;
const MAX_PENDING_PER_ADDRESS = 8;
/** A peer sends its first ping as soon as it connects; a connection silent this long is not a peer. */
const PENDING_TIMEOUT_MS = 5000;
/** Message timestamps further than this from our clock are refused (keep clocks in sync: NTP). */
export const MAX_CLOCK_SKEW_MS = 30_000;
/** Nonces of recently accepted messages; messages beyond this are dropped until entries expire. */
const NONCE_CACHE_SIZE = 200_000;
/** Bytes queued to a peer that does not read; past this the link is closed (Redis counts these). */
const LINK_BUFFER_LIMIT = 16 * 1024 * 1024;
/** New outbound connections per gossip tick, so a flood of unreachable addresses cannot pin a core. */
const MAX_DIALS_PER_TICK = 64;
/** Dropped-message warnings are logged at most this often per kind. */
const WARN_EVERY_MS = 10_000;

export interface GossipOptions {
  state: ClusterState;
  /** Host the bus listens on (`bus_addr`). */
  bindHost: string;
  port: number;
  seeds: readonly string[];
  intervalMs: number;
  secret: string | undefined;
  /** Whether this node's client host is fixed (advertise_addr or a specific bind address). */
  hostFixed: boolean;
  log: Logger;
  now?: () => number;
}

export interface Message {
  t: 'ping' | 'pong';
  from: NodeRecord;
  nodes: NodeRecord[];
  /** Recipient node id; '' when the sender does not know it (a ping to a seed). */
  to: string;
  ts: number;
  nonce: string;
  seen?: string;
}

/** Splits a byte stream into lines, refusing a line longer than `max` before buffering it. */
export class LineReader {
  private parts: Buffer[] = [];
  private length = 0;

  constructor(private readonly max: number) {}

  /** The lines completed by `chunk` (without '\n'); null once a line outgrows the cap. */
  push(chunk: Buffer): Buffer[] | null {
    const lines: Buffer[] = [];
    let from = 0;
    for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, from)) {
      const piece = chunk.subarray(from, nl);
      if (this.length + piece.length > this.max) return null;
      lines.push(this.length === 0 ? piece : Buffer.concat([...this.parts, piece]));
      this.parts = [];
      this.length = 0;
      from = nl + 1;
    }
    const rest = chunk.length - from;
    if (rest > 0) {
      if (this.length + rest > this.max) return null;
      this.parts.push(chunk.subarray(from));
      this.length += rest;
    }
    return lines;
  }
}

/** One outbound link to a gossip address. */
interface Link {
  socket: Socket;
  connected: boolean;
  nodeId: string | null;
}

/** Counts of inbound connections from one address. */
interface AddressCount {
  total: number;
  pending: number;
}

export class GossipBus {
  private server: Server | null = null;
  private timer: NodeJS.Timeout | null = null;
  private failureTimer: NodeJS.Timeout | null = null;
  private readonly links = new Map<string, Link>();
  /** Addresses whose last dial failed, and when to try again. */
  private readonly retryAt = new Map<string, number>();
  private readonly inbound = new Set<Socket>();
  private readonly byAddress = new Map<string, AddressCount>();
  private pending = 0;
  /** Nonce → time after which the timestamp check alone refuses the message. */
  private readonly nonces = new Map<string, number>();
  /** Addresses that turned out to be this node (a seed list shared by every node). */
  private readonly selfAddrs = new Set<string>();
  private readonly lastWarn = new Map<string, number>();
  private readonly key: Buffer | null;
  private readonly now: () => number;
  private boundPort = 0;
  private stopped = false;

  constructor(private readonly opts: GossipOptions) {
    this.key = opts.secret === undefined ? null : Buffer.from(opts.secret, 'utf8');
    this.now = opts.now ?? Date.now;
  }

  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<number> {
    if (this.key === null && !isLoopbackHost(this.opts.bindHost)) {
      // The config schema refuses this too; this is the last line, for any other caller.
      throw new Error(`refusing to listen for cluster gossip on ${this.opts.bindHost} without [cluster] secret`);
    }
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
      if (n.myself) continue;
      const host = n.busHost !== '' ? n.busHost : n.host;
      if (host === '') continue;
      targets.set(`${hostForDial(host)}:${n.busPort}`, n.id);
    }
    for (const [addr, link] of this.links) {
      if (!targets.has(addr)) {
        link.socket.destroy();
        this.links.delete(addr);
      }
    }
    const now = this.now();
    for (const [addr, at] of this.retryAt) if (at <= now || !targets.has(addr)) this.retryAt.delete(addr);
    let dials = 0;
    for (const [addr, nodeId] of targets) {
      if (this.selfAddrs.has(addr)) continue;
      let link = this.links.get(addr);
      if (link === undefined && !this.retryAt.has(addr) && dials < MAX_DIALS_PER_TICK) {
        dials++;
        link = this.connect(addr, nodeId);
      }
      if (link?.connected === true) this.ping(link);
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
    const link: Link = { socket, connected: false, nodeId };
    this.links.set(addr, link);
    socket.setNoDelay(true);
    socket.setTimeout(Math.max(1000, this.opts.state.nodeTimeoutMs));
    socket.on('timeout', () => socket.destroy());
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.links.get(addr) === link) this.links.delete(addr);
      if (!link.connected && !this.stopped) this.retryAt.set(addr, this.now() + Math.max(100, 2 * this.opts.intervalMs));
      if (link.nodeId !== null) {
        const n = this.opts.state.node(link.nodeId);
        if (n !== undefined) n.linked = false;
      }
    });
    const reader = new LineReader(MAX_LINE);
    socket.on('data', (d: Buffer) => {
      this.consume(reader, d, socket, (msg) => {
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
      if (n !== undefined && n.pingSent === 0) n.pingSent = this.now();
    }
    this.send(link.socket, 'ping', link.nodeId ?? '');
  }

  private pong(msg: Message): void {
    const state = this.opts.state;
    const n = state.node(msg.from.id);
    if (n !== undefined) {
      n.pingSent = 0;
      n.pongReceived = this.now();
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
      .map((n) => ({ id: n.id, name: n.name, host: n.host, port: n.port, busHost: n.busHost, busPort: n.busPort, slots: n.slots, inc: n.inc, ver: n.ver, epoch: n.epoch }));
  }

  private send(socket: Socket, t: 'ping' | 'pong', to: string, seen?: string): void {
    if (socket.destroyed || !socket.writable) return;
    const state = this.opts.state;
    if (socket.writableLength > LINK_BUFFER_LIMIT) {
      state.stats.linkBufferLimitExceeded++;
      this.warn('buffer', { peer: socket.remoteAddress }, 'cluster bus: peer does not read its gossip; link closed');
      socket.destroy();
      return;
    }
    const msg: Message = {
      t,
      from: state.selfRecord(),
      nodes: this.others(),
      to,
      ts: this.now(),
      nonce: randomBytes(16).toString('hex'),
      ...(seen === undefined ? {} : { seen }),
    };
    const json = JSON.stringify(msg);
    const mac = this.key === null ? '-' : createHmac('sha256', this.key).update(json).digest('hex');
    socket.write(`${mac} ${json}\n`);
    state.stats.messagesSent++;
    state.stats.sentByType[t]++;
  }

  // ---- receiving -------------------------------------------------------------------------------

  private accept(socket: Socket): void {
    const state = this.opts.state;
    const addr = normalizeHost(socket.remoteAddress ?? '');
    const count = this.byAddress.get(addr) ?? { total: 0, pending: 0 };
    if (
      this.stopped ||
      this.inbound.size >= MAX_INBOUND ||
      this.pending >= MAX_PENDING ||
      count.total >= MAX_PER_ADDRESS ||
      count.pending >= MAX_PENDING_PER_ADDRESS
    ) {
      state.stats.connectionsRefused++;
      this.warn('refused', { peer: addr, refused: state.stats.connectionsRefused }, 'cluster bus: connection refused: too many connections');
      socket.destroy();
      return;
    }
    count.total++;
    count.pending++;
    this.pending++;
    this.byAddress.set(addr, count);
    this.inbound.add(socket);
    let proven = false;
    const prove = (): void => {
      if (proven) return;
      proven = true;
      count.pending--;
      this.pending--;
      clearTimeout(deadline);
    };
    const deadline = setTimeout(() => socket.destroy(), PENDING_TIMEOUT_MS);
    deadline.unref();
    socket.setNoDelay(true);
    // Peers ping every interval; a connection silent for this long is not a peer's.
    socket.setTimeout(Math.max(10_000, 2 * state.nodeTimeoutMs, 4 * this.opts.intervalMs));
    socket.on('timeout', () => socket.destroy());
    socket.on('error', () => {});
    socket.on('close', () => {
      prove();
      this.inbound.delete(socket);
      count.total--;
      if (count.total === 0 && this.byAddress.get(addr) === count) this.byAddress.delete(addr);
    });
    const reader = new LineReader(MAX_LINE);
    socket.on('data', (d: Buffer) => {
      this.consume(reader, d, socket, (msg) => {
        prove();
        if (msg.t === 'ping') this.send(socket, 'pong', msg.from.id, addr);
      });
    });
  }

  /** Handles every complete line in `chunk`; drops the connection when a line is too long. */
  private consume(reader: LineReader, chunk: Buffer, socket: Socket, then: (msg: Message) => void): void {
    const lines = reader.push(chunk);
    const state = this.opts.state;
    if (lines === null) {
      state.stats.malformed++;
      this.warn('oversized', { peer: socket.remoteAddress, max_line: MAX_LINE }, 'cluster bus: oversized line; connection dropped');
      socket.destroy();
      return;
    }
    for (const line of lines) {
      if (socket.destroyed) return;
      try {
        const msg = this.verify(line);
        if (msg === null) continue;
        state.stats.messagesReceived++;
        state.stats.receivedByType[msg.t]++;
        this.absorb(msg, socket);
        then(msg);
      } catch (err) {
        state.stats.malformed++;
        this.warn('failed', { err: err instanceof Error ? err.message : String(err) }, 'cluster bus: message handling failed');
      }
    }
  }

  /** The message in a line, or null (counted) when it must be dropped. */
  private verify(line: Buffer): Message | null {
    const state = this.opts.state;
    const space = line.indexOf(0x20);
    if (space < 0 || space > 64) return this.malformed();
    const body = line.subarray(space + 1);
    if (this.key !== null) {
      const want = createHmac('sha256', this.key).update(body).digest();
      const mac = line.subarray(0, space).toString('latin1');
      const got = /^[0-9a-f]{64}$/.test(mac) ? Buffer.from(mac, 'hex') : null;
      // Compared in constant time; a badly formed MAC is compared against itself and still fails.
      const equal = timingSafeEqual(got ?? want, want) && got !== null;
      if (!equal) {
        state.stats.authFailures++;
        this.warn('auth', { dropped: state.stats.authFailures }, 'cluster bus: message failed authentication; dropped');
        return null;
      }
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return this.malformed();
    }
    const msg = parseMessage(parsed);
    if (msg === null) return this.malformed();
    const now = this.now();
    if (Math.abs(now - msg.ts) > MAX_CLOCK_SKEW_MS || (msg.to !== '' && msg.to !== state.myself.id)) return this.replay(msg, 'window or recipient');
    this.expireNonces(now);
    if (this.nonces.has(msg.nonce)) return this.replay(msg, 'nonce seen before');
    if (this.nonces.size >= NONCE_CACHE_SIZE) return this.replay(msg, 'nonce cache full');
    this.nonces.set(msg.nonce, msg.ts + MAX_CLOCK_SKEW_MS);
    const refused = state.refuses(msg.from);
    if (refused === 'stale') {
      state.stats.stale++;
      this.warn('stale', { node: msg.from.name, inc: msg.from.inc, stale: state.stats.stale }, 'cluster bus: message from an older incarnation of a node; dropped');
      return null;
    }
    if (refused === 'forgotten') return null;
    return msg;
  }

  private malformed(): null {
    const state = this.opts.state;
    state.stats.malformed++;
    this.warn('malformed', { malformed: state.stats.malformed }, 'cluster bus: malformed message; dropped');
    return null;
  }

  private replay(msg: Message, why: string): null {
    const state = this.opts.state;
    state.stats.replays++;
    this.warn('replay', { node: msg.from.name, why, replays: state.stats.replays }, 'cluster bus: replayed or misdirected message; dropped');
    return null;
  }

  /** Nonces are kept until their message would fail the timestamp check anyway. */
  private expireNonces(now: number): void {
    for (const [nonce, until] of this.nonces) {
      if (until > now) break;
      this.nonces.delete(nonce);
    }
  }

  private absorb(msg: Message, socket: Socket): void {
    const state = this.opts.state;
    if (msg.from.id === state.myself.id && msg.from.inc === state.myself.inc) return;
    const from = { ...msg.from };
    // A node that does not know its own host is reached at the address its message came from.
    if (from.host === '') from.host = normalizeHost(socket.remoteAddress ?? '');
    // Only a message addressed to this node proves its sender is alive now: one addressed to
    // nobody (a first ping to a seed) could be a copy sent to another node earlier.
    state.absorb(from, msg.nodes, msg.to !== '');
  }

  /** Logs at most once per WARN_EVERY_MS per kind, so hostile traffic cannot flood the log. */
  private warn(kind: string, fields: Record<string, unknown>, text: string): void {
    const now = this.now();
    if (now - (this.lastWarn.get(kind) ?? -Infinity) < WARN_EVERY_MS) return;
    this.lastWarn.set(kind, now);
    this.opts.log.warn(fields, text);
  }
}

// ---- validation ------------------------------------------------------------------------------

function isInt(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

function isHost(v: unknown): v is string {
  return typeof v === 'string' && NODE_HOST.test(v);
}

function parseRecord(v: unknown): NodeRecord | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const r = v as Record<string, unknown>;
  if (typeof r.name !== 'string' || !NODE_NAME.test(r.name)) return null;
  if (typeof r.id !== 'string' || r.id !== nodeIdFor(r.name)) return null;
  if (!isHost(r.host) || !isHost(r.busHost)) return null;
  if (!isInt(r.port, 0, 65535) || !isInt(r.busPort, 0, 65535)) return null;
  if (!isInt(r.inc, 0, Number.MAX_SAFE_INTEGER) || !isInt(r.ver, 0, Number.MAX_SAFE_INTEGER)) return null;
  if (!isInt(r.epoch, 0, Number.MAX_SAFE_INTEGER)) return null;
  if (!Array.isArray(r.slots) || r.slots.length > SLOT_COUNT) return null;
  const slots: SlotRange[] = [];
  for (const s of r.slots as unknown[]) {
    if (!Array.isArray(s) || s.length !== 2) return null;
    const [a, b] = s as unknown[];
    if (!isInt(a, 0, SLOT_COUNT - 1) || !isInt(b, a, SLOT_COUNT - 1)) return null;
    slots.push([a, b]);
  }
  return { id: r.id, name: r.name, host: r.host, port: r.port, busHost: r.busHost, busPort: r.busPort, slots, inc: r.inc, ver: r.ver, epoch: r.epoch };
}

/** A validated message, or null. Exported for the unit tests. */
export function parseMessage(v: unknown): Message | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const m = v as Record<string, unknown>;
  if (m.t !== 'ping' && m.t !== 'pong') return null;
  if (typeof m.to !== 'string' || !/^([0-9a-f]{40})?$/.test(m.to)) return null;
  if (!isInt(m.ts, 0, Number.MAX_SAFE_INTEGER)) return null;
  if (typeof m.nonce !== 'string' || !/^[0-9a-f]{32}$/.test(m.nonce)) return null;
  if (m.seen !== undefined && !isHost(m.seen)) return null;
  if (!Array.isArray(m.nodes) || m.nodes.length > MAX_RECORDS) return null;
  const from = parseRecord(m.from);
  if (from === null) return null;
  const nodes: NodeRecord[] = [];
  for (const n of m.nodes as unknown[]) {
    const r = parseRecord(n);
    if (r === null) return null;
    nodes.push(r);
  }
  return { t: m.t, from, nodes, to: m.to, ts: m.ts, nonce: m.nonce, ...(typeof m.seen === 'string' ? { seen: m.seen } : {}) };
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
