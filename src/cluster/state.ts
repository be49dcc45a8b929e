/**
 * The cluster as this node sees it: every known node, the slots each one claims, whether it
 * answers, and from that, who serves each slot. Gossip feeds it; routing and CLUSTER read it.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../observability/log.js';
import { formatRanges, rangesToSlots, SLOT_COUNT, slotsToRanges, type SlotRange } from './slots.js';

/** The stable 40-hex-digit node id clients see, derived from the configured `node_id`. */
export function nodeIdFor(name: string): string {
  return createHash('sha1').update(`blobasaur-node:${name}`).digest('hex');
}

/** What a node says about itself (and what gossip repeats about others). */
export interface NodeRecord {
  id: string;
  name: string;
  /** Client address host; '' when the node does not know how others reach it. */
  host: string;
  port: number;
  busPort: number;
  slots: SlotRange[];
  /** Start time of the node's process: a newer incarnation replaces what others remember. */
  inc: number;
  /** Bumped by the node whenever its record changes within one incarnation. */
  ver: number;
}

export interface ClusterNode extends NodeRecord {
  readonly myself: boolean;
  slotSet: Uint8Array;
  /** Last direct message from the node (ms); for a node only heard of, when it was first heard of. */
  lastHeard: number;
  /** Our last ping to it still unanswered (ms), 0 when none. */
  pingSent: number;
  /** Last pong from it (ms), 0 when none yet. */
  pongReceived: number;
  /** An open gossip connection to it. */
  linked: boolean;
  /** Silent longer than half the node timeout: `fail?` in CLUSTER NODES. */
  pfail: boolean;
  /** Silent longer than the node timeout: `fail`; its slots are not served. */
  failed: boolean;
}

export type SlotRoute =
  | { kind: 'self' }
  | { kind: 'moved'; node: ClusterNode }
  | { kind: 'down'; why: 'unassigned' | 'failed' | 'conflict' };

export interface ClusterStateOptions {
  name: string;
  host: string;
  port: number;
  busPort: number;
  slots: Uint8Array;
  nodeTimeoutMs: number;
  namespaceRouting: 'namespace' | 'field';
  log: Logger;
  now?: () => number;
}

export interface ClusterStats {
  messagesSent: number;
  messagesReceived: number;
  /** Per message type, as CLUSTER INFO lists them ("ping", "pong"). */
  sentByType: Record<'ping' | 'pong', number>;
  receivedByType: Record<'ping' | 'pong', number>;
  /** Gossip messages dropped because their HMAC did not verify (or was missing). */
  authFailures: number;
  /** Gossip lines that were not valid messages. */
  malformed: number;
}

export class ClusterState {
  readonly myself: ClusterNode;
  readonly namespaceRouting: 'namespace' | 'field';
  readonly nodeTimeoutMs: number;
  readonly stats: ClusterStats = {
    messagesSent: 0,
    messagesReceived: 0,
    sentByType: { ping: 0, pong: 0 },
    receivedByType: { ping: 0, pong: 0 },
    authFailures: 0,
    malformed: 0,
  };
  private readonly byId = new Map<string, ClusterNode>();
  /** Owner of each slot; null when unassigned or claimed by more than one node. */
  private owners: (ClusterNode | null)[] = new Array<ClusterNode | null>(SLOT_COUNT).fill(null);
  private conflicts = new Map<number, string[]>();
  /** Incarnations of another process using our node_id, logged once each. */
  private readonly duplicatesLogged = new Set<number>();
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(opts: ClusterStateOptions) {
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.namespaceRouting = opts.namespaceRouting;
    this.nodeTimeoutMs = opts.nodeTimeoutMs;
    const t = this.now();
    this.myself = {
      id: nodeIdFor(opts.name),
      name: opts.name,
      host: opts.host,
      port: opts.port,
      busPort: opts.busPort,
      slots: slotsToRanges(opts.slots),
      slotSet: opts.slots,
      inc: t,
      ver: 0,
      myself: true,
      lastHeard: t,
      pingSent: 0,
      pongReceived: 0,
      linked: true,
      pfail: false,
      failed: false,
    };
    this.byId.set(this.myself.id, this.myself);
    this.rebuild();
  }

  /** Every known node, this one first, then by id. */
  nodes(): ClusterNode[] {
    const others = [...this.byId.values()].filter((n) => !n.myself).sort((a, b) => (a.id < b.id ? -1 : 1));
    return [this.myself, ...others];
  }

  node(id: string): ClusterNode | undefined {
    return this.byId.get(id);
  }

  /** This node's record as gossip sends it. */
  selfRecord(): NodeRecord {
    return record(this.myself);
  }

  /** Updates how this node is reached (learned from peers or the bound port). */
  setSelfAddress(host: string, port: number, busPort: number): void {
    const m = this.myself;
    if (m.host === host && m.port === port && m.busPort === busPort) return;
    m.host = host;
    m.port = port;
    m.busPort = busPort;
    m.ver++;
  }

  /**
   * Merges a record. `direct` means the node itself sent it (so it is alive and authoritative);
   * otherwise a third party repeated it and it only replaces an older incarnation or version.
   * Returns whether anything routing-relevant changed.
   */
  merge(r: NodeRecord, direct: boolean): boolean {
    const t = this.now();
    if (r.id === this.myself.id) {
      if (direct && r.inc !== this.myself.inc && !this.duplicatesLogged.has(r.inc)) {
        this.duplicatesLogged.add(r.inc);
        this.log.error({ node_id: r.name, host: r.host, port: r.port }, 'another node uses this node_id; node ids must be unique');
      }
      return false;
    }
    let n = this.byId.get(r.id);
    if (n === undefined) {
      n = {
        ...r,
        slots: [...r.slots],
        slotSet: rangesToSlots(r.slots),
        myself: false,
        lastHeard: t,
        pingSent: 0,
        pongReceived: 0,
        linked: false,
        pfail: false,
        failed: false,
      };
      this.byId.set(r.id, n);
      this.log.info({ node: r.name, id: r.id, addr: `${r.host}:${r.port}`, bus_port: r.busPort, slots: formatRanges(r.slots) }, 'cluster node discovered');
      this.rebuild();
      return true;
    }
    if (direct) this.heardFrom(n);
    const newer = r.inc > n.inc || (r.inc === n.inc && r.ver > n.ver);
    if (!direct && !newer) return false;
    if (direct && !newer && r.inc === n.inc && r.ver === n.ver) return false;
    const slotsChanged = formatRanges(r.slots) !== formatRanges(n.slots);
    n.name = r.name;
    n.host = r.host;
    n.port = r.port;
    n.busPort = r.busPort;
    n.inc = r.inc;
    n.ver = r.ver;
    if (slotsChanged) {
      n.slots = [...r.slots];
      n.slotSet = rangesToSlots(r.slots);
      this.log.info({ node: r.name, slots: formatRanges(r.slots) }, 'cluster node slots changed');
      this.rebuild();
    }
    return true;
  }

  /** A direct message from the node arrived: it is alive. */
  heardFrom(n: ClusterNode): void {
    n.lastHeard = this.now();
    if (n.failed || n.pfail) {
      if (n.failed) this.log.info({ node: n.name, id: n.id }, 'cluster node is reachable again');
      n.failed = false;
      n.pfail = false;
      this.rebuild();
    }
  }

  /** Flags nodes silent for longer than the node timeout (`fail`) or half of it (`fail?`). */
  checkFailures(): void {
    const t = this.now();
    let changed = false;
    for (const n of this.byId.values()) {
      if (n.myself) continue;
      const silent = t - n.lastHeard;
      const failed = silent >= this.nodeTimeoutMs;
      const pfail = !failed && silent >= this.nodeTimeoutMs / 2;
      if (failed && !n.failed) {
        this.log.warn({ node: n.name, id: n.id, silent_ms: silent, slots: formatRanges(n.slots) }, 'cluster node failed: no gossip within node_timeout_ms');
      }
      if (failed !== n.failed) changed = true;
      n.failed = failed;
      n.pfail = pfail;
    }
    if (changed) this.rebuild();
  }

  /** Where a command on `slot` goes. */
  route(slot: number): SlotRoute {
    const owner = this.owners[slot];
    if (owner === null) return { kind: 'down', why: this.conflicts.has(slot) ? 'conflict' : 'unassigned' };
    if (owner.myself) return { kind: 'self' };
    if (owner.failed) return { kind: 'down', why: 'failed' };
    return { kind: 'moved', node: owner };
  }

  /** Slots claimed by more than one node, with the names of the claimants. */
  slotConflicts(): ReadonlyMap<number, string[]> {
    return this.conflicts;
  }

  /** CLUSTER INFO's counters. */
  summary(): { assigned: number; ok: number; pfail: number; fail: number; size: number; state: 'ok' | 'fail' } {
    let assigned = 0;
    let ok = 0;
    let pfail = 0;
    let fail = 0;
    for (let s = 0; s < SLOT_COUNT; s++) {
      const o = this.owners[s];
      if (o === null) continue;
      assigned++;
      if (o.failed) fail++;
      else if (o.pfail) pfail++;
      else ok++;
    }
    const size = [...this.byId.values()].filter((n) => n.slots.length > 0).length;
    const state = ok + pfail === SLOT_COUNT && this.conflicts.size === 0 ? 'ok' : 'fail';
    return { assigned, ok, pfail, fail, size, state };
  }

  private rebuild(): void {
    const owners = new Array<ClusterNode | null>(SLOT_COUNT).fill(null);
    const conflicts = new Map<number, string[]>();
    for (const n of this.byId.values()) {
      for (const [a, b] of n.slots) {
        for (let s = a; s <= b; s++) {
          const prev = owners[s];
          const claimed = conflicts.get(s);
          if (claimed !== undefined) claimed.push(n.name);
          else if (prev === null) owners[s] = n;
          else {
            conflicts.set(s, [prev.name, n.name]);
            owners[s] = null;
          }
        }
      }
    }
    const before = describeConflicts(this.conflicts);
    const after = describeConflicts(conflicts);
    if (before !== after && conflicts.size > 0) {
      this.log.error({ conflicts: after }, 'slot ownership conflict: more than one node claims these slots; they are not served until resolved');
    } else if (before !== after) {
      this.log.info('slot ownership conflicts resolved');
    }
    this.owners = owners;
    this.conflicts = conflicts;
  }
}

function record(n: ClusterNode): NodeRecord {
  return { id: n.id, name: n.name, host: n.host, port: n.port, busPort: n.busPort, slots: n.slots, inc: n.inc, ver: n.ver };
}

/** "5000-5010 (node-1, node-2); 7000 (node-1, node-3)". */
export function describeConflicts(conflicts: ReadonlyMap<number, string[]>): string {
  const groups: { start: number; end: number; who: string }[] = [];
  for (const slot of [...conflicts.keys()].sort((a, b) => a - b)) {
    const who = conflicts.get(slot)!.join(', ');
    const last = groups[groups.length - 1];
    if (last !== undefined && last.end === slot - 1 && last.who === who) last.end = slot;
    else groups.push({ start: slot, end: slot, who });
  }
  return groups.map((g) => `${g.start === g.end ? g.start : `${g.start}-${g.end}`} (${g.who})`).join('; ');
}
