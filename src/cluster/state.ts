/**
 * The cluster as this node sees it: every known node, the slots each one claims, whether it
 * answers, and from that, who serves each slot. Gossip feeds it; routing and CLUSTER read it.
 *
 * Two nodes claiming one slot is settled the same way on every node, as Redis settles it with
 * configEpoch: the claim with the higher `epoch` wins, and between equal epochs the lower node id.
 * Every node applies the same rule to the same records, so they all route the slot alike.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../observability/log.js';
import { formatRanges, SLOT_COUNT, slotsToRanges, type SlotRange } from './slots.js';

/** The stable 40-hex-digit node id clients see, derived from the configured `node_id`. */
export function nodeIdFor(name: string): string {
  return createHash('sha1').update(`blobasaur-node:${name}`).digest('hex');
}

/**
 * Node names are printed in CLUSTER NODES (`addr@bus,name`) and in logs: letters, digits, `.`,
 * `_`, `-`, so a name can never add a field or a line. Shared with the config schema.
 */
export const NODE_NAME = /^[A-Za-z0-9._-]{1,128}$/;
/** Hosts in records: an IPv4/IPv6 literal or a host name, or '' (unknown). No spaces, no controls. */
export const NODE_HOST = /^[A-Za-z0-9.:_-]{0,253}$/;

/** How long CLUSTER FORGET keeps gossip from adding the node back: Redis' CLUSTER_BLACKLIST_TTL. */
export const FORGET_TTL_MS = 60_000;

/** What a node says about itself (and what gossip repeats about others). */
export interface NodeRecord {
  id: string;
  name: string;
  /** Client address host; '' when the node does not know how others reach it. */
  host: string;
  port: number;
  /** Bus host when it differs from `host` (a bus kept on loopback); '' means `host`. */
  busHost: string;
  busPort: number;
  slots: SlotRange[];
  /** Start time of the node's process: a newer incarnation replaces what others remember. */
  inc: number;
  /** Bumped by the node whenever its record changes within one incarnation. */
  ver: number;
  /** Config epoch (`[cluster] config_epoch`): the higher one wins a contested slot. */
  epoch: number;
}

export interface ClusterNode extends NodeRecord {
  readonly myself: boolean;
  /** The slots this node serves once contested slots are settled (what CLUSTER NODES shows). */
  owned: SlotRange[];
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
  /** Id of the primary this node replicates (managed clusters); null for a primary. */
  replicaOf: string | null;
}

/** One node as a managed cluster's etcd view describes it (see cluster/managed.ts). */
export interface ManagedNode {
  name: string;
  host: string;
  port: number;
  slots: SlotRange[];
  /** Name of its primary; null for a primary. */
  replicaOf: string | null;
  /** Holds a live lease in etcd. */
  alive: boolean;
}

export type SlotRoute = { kind: 'self' } | { kind: 'moved'; node: ClusterNode } | { kind: 'down'; why: 'unassigned' | 'failed' };

export interface ClusterStateOptions {
  name: string;
  host: string;
  port: number;
  busHost?: string;
  busPort: number;
  slots: Uint8Array;
  epoch?: number;
  nodeTimeoutMs: number;
  namespaceRouting: 'namespace' | 'field';
  /** Known nodes, this one included; records of further nodes are dropped and counted. */
  maxNodes?: number;
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
  /** Gossip lines that were not valid messages (including lines over the size cap). */
  malformed: number;
  /** Authenticated messages dropped as replays: nonce seen, timestamp out of window, wrong recipient. */
  replays: number;
  /** Messages from an older incarnation of a node than the one known. */
  stale: number;
  /** Node records dropped because the known-node cap was reached. */
  nodesRefused: number;
  /** Bus connections refused by the connection caps. */
  connectionsRefused: number;
  /** Links closed because the peer did not read what we sent (CLUSTER INFO's counter). */
  linkBufferLimitExceeded: number;
}

/** Default cap on known nodes: Redis documents 1000 nodes as its design limit. */
export const MAX_KNOWN_NODES = 1000;

/** Contested slots described in logs and INFO, at most this many ranges. */
const MAX_DESCRIBED = 16;

export class ClusterState {
  readonly myself: ClusterNode;
  readonly namespaceRouting: 'namespace' | 'field';
  readonly nodeTimeoutMs: number;
  readonly maxNodes: number;
  readonly stats: ClusterStats = {
    messagesSent: 0,
    messagesReceived: 0,
    sentByType: { ping: 0, pong: 0 },
    receivedByType: { ping: 0, pong: 0 },
    authFailures: 0,
    malformed: 0,
    replays: 0,
    stale: 0,
    nodesRefused: 0,
    connectionsRefused: 0,
    linkBufferLimitExceeded: 0,
  };
  private readonly byId = new Map<string, ClusterNode>();
  /** Owner of each slot once contests are settled; null when nobody claims it. */
  private owners: (ClusterNode | null)[] = new Array<ClusterNode | null>(SLOT_COUNT).fill(null);
  private contested = 0;
  /** Slot-table rebuilds so far: at most one per message however many records it carries. */
  rebuilds = 0;
  private contestText = '';
  /** Nodes removed by CLUSTER FORGET, and until when gossip may not add them back. */
  private readonly forgotten = new Map<string, number>();
  /** Set by merges and failure changes; the slot table is rebuilt once, by settle(). */
  private dirty = false;
  /** Incarnations of another process using our node_id, logged once each (bounded). */
  private readonly duplicatesLogged = new Set<number>();
  private lastRefusalLog = 0;
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(opts: ClusterStateOptions) {
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.namespaceRouting = opts.namespaceRouting;
    this.nodeTimeoutMs = opts.nodeTimeoutMs;
    this.maxNodes = opts.maxNodes ?? MAX_KNOWN_NODES;
    const t = this.now();
    const slots = slotsToRanges(opts.slots);
    this.myself = {
      id: nodeIdFor(opts.name),
      name: opts.name,
      host: opts.host,
      port: opts.port,
      busHost: opts.busHost ?? '',
      busPort: opts.busPort,
      slots,
      owned: slots,
      inc: t,
      ver: 0,
      epoch: opts.epoch ?? 0,
      myself: true,
      lastHeard: t,
      pingSent: 0,
      pongReceived: 0,
      linked: true,
      pfail: false,
      failed: false,
      replicaOf: null,
    };
    this.byId.set(this.myself.id, this.myself);
    this.rebuild();
  }

  /** Every known node, this one first, then by id. */
  nodes(): ClusterNode[] {
    const others = [...this.byId.values()].filter((n) => !n.myself).sort((a, b) => (a.id < b.id ? -1 : 1));
    return [this.myself, ...others];
  }

  get size(): number {
    return this.byId.size;
  }

  node(id: string): ClusterNode | undefined {
    return this.byId.get(id);
  }

  /** CLUSTER INFO's cluster_current_epoch: the highest config epoch known. */
  currentEpoch(): number {
    let max = 0;
    for (const n of this.byId.values()) if (n.epoch > max) max = n.epoch;
    return max;
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

  /** Whether a message from this node must be dropped: forgotten, or an older incarnation. */
  refuses(r: NodeRecord): 'forgotten' | 'stale' | null {
    if (this.isForgotten(r.id)) return 'forgotten';
    const n = this.byId.get(r.id);
    if (n !== undefined && !n.myself && r.inc < n.inc) return 'stale';
    return null;
  }

  /**
   * Takes in one message: the sender's own record and what it knows about others. `alive` means
   * the message proves the sender is up now (it was addressed to this node). The slot table is
   * rebuilt at most once, however many records changed.
   */
  absorb(from: NodeRecord, others: readonly NodeRecord[], alive: boolean): void {
    this.merge(from, true, alive);
    for (const r of others) if (r.id !== from.id) this.merge(r, false, false);
    this.settle();
  }

  /**
   * Merges one record. `direct` means the node itself sent it (authoritative); otherwise a third
   * party repeated it and it only replaces an older incarnation or version. An older incarnation
   * never replaces a newer one. The caller calls settle() afterwards (absorb() does).
   */
  merge(r: NodeRecord, direct: boolean, alive = direct): void {
    const t = this.now();
    if (r.id === this.myself.id) {
      if (direct && r.inc !== this.myself.inc && !this.duplicatesLogged.has(r.inc) && this.duplicatesLogged.size < 100) {
        this.duplicatesLogged.add(r.inc);
        this.log.error({ node_id: r.name, host: r.host, port: r.port }, 'another node uses this node_id; node ids must be unique');
      }
      return;
    }
    if (this.isForgotten(r.id)) return;
    let n = this.byId.get(r.id);
    if (n === undefined) {
      if (this.byId.size >= this.maxNodes) {
        this.stats.nodesRefused++;
        if (t - this.lastRefusalLog >= 10_000) {
          this.lastRefusalLog = t;
          this.log.warn({ known: this.byId.size, refused: this.stats.nodesRefused }, 'cluster: known-node cap reached; records of further nodes dropped');
        }
        return;
      }
      n = {
        ...r,
        slots: [...r.slots],
        owned: [],
        myself: false,
        lastHeard: t,
        pingSent: 0,
        pongReceived: 0,
        linked: false,
        pfail: false,
        failed: false,
        replicaOf: null,
      };
      this.byId.set(r.id, n);
      this.log.info({ node: r.name, id: r.id, addr: `${r.host}:${r.port}`, bus_port: r.busPort, epoch: r.epoch, slots: formatRanges(r.slots) }, 'cluster node discovered');
      this.dirty = true;
      return;
    }
    if (r.inc < n.inc) return;
    if (alive) this.heardFrom(n);
    const newer = r.inc > n.inc || r.ver > n.ver;
    if (!newer) return;
    const slotsChanged = formatRanges(r.slots) !== formatRanges(n.slots);
    if (slotsChanged || r.epoch !== n.epoch) this.dirty = true;
    n.name = r.name;
    n.host = r.host;
    n.port = r.port;
    n.busHost = r.busHost;
    n.busPort = r.busPort;
    n.inc = r.inc;
    n.ver = r.ver;
    n.epoch = r.epoch;
    if (slotsChanged) {
      n.slots = [...r.slots];
      this.log.info({ node: r.name, epoch: r.epoch, slots: formatRanges(r.slots) }, 'cluster node slots changed');
    }
  }

  /** A direct message from the node arrived: it is alive. */
  heardFrom(n: ClusterNode): void {
    n.lastHeard = this.now();
    if (n.failed || n.pfail) {
      if (n.failed) this.log.info({ node: n.name, id: n.id }, 'cluster node is reachable again');
      if (n.failed) this.dirty = true;
      n.failed = false;
      n.pfail = false;
    }
  }

  /**
   * CLUSTER FORGET: drops the node and keeps gossip from adding it back for FORGET_TTL_MS.
   * 'unknown' / 'myself' are refusals, worded by the command.
   */
  forget(id: string): 'ok' | 'unknown' | 'myself' {
    const n = this.byId.get(id);
    if (n === undefined) return 'unknown';
    if (n.myself) return 'myself';
    this.byId.delete(id);
    this.forgotten.set(id, this.now() + FORGET_TTL_MS);
    this.log.info({ node: n.name, id, ttl_ms: FORGET_TTL_MS }, 'cluster node forgotten (CLUSTER FORGET)');
    this.dirty = true;
    this.settle();
    return 'ok';
  }

  isForgotten(id: string): boolean {
    const until = this.forgotten.get(id);
    if (until === undefined) return false;
    if (this.now() < until) return true;
    this.forgotten.delete(id);
    return false;
  }

  /** Flags nodes silent for longer than the node timeout (`fail`) or half of it (`fail?`). */
  checkFailures(): void {
    const t = this.now();
    for (const n of this.byId.values()) {
      if (n.myself) continue;
      const silent = t - n.lastHeard;
      const failed = silent >= this.nodeTimeoutMs;
      const pfail = !failed && silent >= this.nodeTimeoutMs / 2;
      if (failed && !n.failed) {
        this.log.warn({ node: n.name, id: n.id, silent_ms: silent, slots: formatRanges(n.owned) }, 'cluster node failed: no gossip within node_timeout_ms');
      }
      if (failed !== n.failed) this.dirty = true;
      n.failed = failed;
      n.pfail = pfail;
    }
    // Expired CLUSTER FORGET entries go here too, so the map never outlives its TTL by much.
    for (const [id, until] of this.forgotten) if (t >= until) this.forgotten.delete(id);
    this.settle();
  }

  /**
   * Managed mode: etcd's view replaces the whole table (it is the source of truth, not gossip).
   * `epoch` is the slot map's epoch, shown as every node's config epoch. A node without a lease
   * is `fail`: etcd decided that, not this node.
   */
  applyManaged(epoch: number, view: readonly ManagedNode[]): void {
    const t = this.now();
    const idOf = (name: string): string => nodeIdFor(name);
    const keep = new Set<string>([this.myself.id]);
    for (const v of view) {
      const id = idOf(v.name);
      keep.add(id);
      let n = this.byId.get(id);
      if (n === undefined) {
        n = {
          id, name: v.name, host: v.host, port: v.port, busHost: '', busPort: 0, slots: [], owned: [], inc: 0, ver: 0, epoch,
          myself: false, lastHeard: t, pingSent: 0, pongReceived: 0, linked: true, pfail: false, failed: false, replicaOf: null,
        };
        this.byId.set(id, n);
      }
      if (!n.myself) {
        n.host = v.host;
        n.port = v.port;
        if (n.failed !== !v.alive) this.log[v.alive ? 'info' : 'warn']({ node: v.name, id }, v.alive ? 'cluster node holds a lease again' : 'cluster node failed: its etcd lease expired');
        n.failed = !v.alive;
        n.linked = v.alive;
        if (v.alive) n.lastHeard = t;
      }
      n.slots = [...v.slots];
      n.epoch = epoch;
      n.replicaOf = v.replicaOf === null ? null : idOf(v.replicaOf);
    }
    for (const id of [...this.byId.keys()]) if (!keep.has(id)) this.byId.delete(id);
    if (!view.some((v) => idOf(v.name) === this.myself.id)) {
      this.myself.slots = [];
      this.myself.replicaOf = null;
      this.myself.epoch = epoch;
    }
    this.rebuild();
  }

  /**
   * Managed mode: gives `slot` to the primary named `owner` in etcd (one compare-and-swap of the
   * map, epoch + 1) and resolves once this node's view shows it. null with gossip: there the
   * slots come from the config files.
   */
  assignSlot: ((slot: number, owner: string) => Promise<void>) | null = null;

  /** Slots this node is handing over (CLUSTER SETSLOT MIGRATING): slot → target node id. */
  readonly migrating = new Map<number, string>();
  /** Slots this node is taking over (CLUSTER SETSLOT IMPORTING): slot → source node id. */
  readonly importing = new Map<number, string>();

  /** Replication offsets by node id, as the managed view publishes them (CLUSTER SHARDS). */
  offsets = new Map<string, number>();

  offsetOf(n: ClusterNode): number {
    return this.offsets.get(n.id) ?? 0;
  }

  /** Where a command on `slot` goes. */
  route(slot: number): SlotRoute {
    const owner = this.owners[slot];
    if (owner === null) return { kind: 'down', why: 'unassigned' };
    if (owner.myself) return { kind: 'self' };
    if (owner.failed) return { kind: 'down', why: 'failed' };
    return { kind: 'moved', node: owner };
  }

  /** The node serving `slot` once contests are settled, failed or not. */
  owner(slot: number): ClusterNode | null {
    return this.owners[slot];
  }

  /** Slots claimed by more than one node (settled by epoch) and their description. */
  slotConflicts(): { count: number; ranges: string } {
    return { count: this.contested, ranges: this.contestText };
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
    let size = 0;
    for (const n of this.byId.values()) if (n.owned.length > 0) size++;
    const state = ok + pfail === SLOT_COUNT ? 'ok' : 'fail';
    return { assigned, ok, pfail, fail, size, state };
  }

  /** Rebuilds the slot table if anything changed since the last time. */
  settle(): void {
    if (!this.dirty) return;
    this.dirty = false;
    this.rebuild();
  }

  /**
   * One pass over the claims in priority order (epoch descending, then node id ascending): the
   * first claim on a slot wins, later ones are counted as contested. Work is the number of
   * claimed slots, typed arrays only, whatever the number of nodes.
   */
  private rebuild(): void {
    this.rebuilds++;
    const ranked = [...this.byId.values()].sort(beats);
    const owner = new Int32Array(SLOT_COUNT).fill(-1);
    const loser = new Int32Array(SLOT_COUNT).fill(-1);
    const claims = new Uint16Array(SLOT_COUNT);
    for (let i = 0; i < ranked.length; i++) {
      for (const [a, b] of ranked[i].slots) {
        for (let s = a; s <= b; s++) {
          if (owner[s] < 0) owner[s] = i;
          else if (loser[s] < 0) loser[s] = i;
          if (claims[s] < 0xffff) claims[s]++;
        }
      }
    }
    const owners = new Array<ClusterNode | null>(SLOT_COUNT).fill(null);
    const owned = ranked.map(() => new Uint8Array(0));
    let contested = 0;
    for (let s = 0; s < SLOT_COUNT; s++) {
      const i = owner[s];
      if (i < 0) continue;
      owners[s] = ranked[i];
      if (owned[i].length === 0) owned[i] = new Uint8Array(SLOT_COUNT);
      owned[i][s] = 1;
      if (loser[s] >= 0) contested++;
    }
    ranked.forEach((n, i) => (n.owned = owned[i].length === 0 ? [] : slotsToRanges(owned[i])));
    const text = contested === 0 ? '' : describeContests(ranked, owner, loser, claims);
    if (text !== this.contestText) {
      if (contested > 0) {
        this.log.warn(
          { conflicts: text, slots: contested },
          'slot ownership conflict: more than one node claims these slots; the higher config_epoch (then the lower node id) serves them',
        );
      } else {
        this.log.info('slot ownership conflicts resolved');
      }
    }
    this.owners = owners;
    this.contested = contested;
    this.contestText = text;
    // A move is over once the map says so: the source no longer owns the slot, or this node does.
    for (const s of [...this.migrating.keys()]) if (owners[s] !== this.myself) this.migrating.delete(s);
    for (const s of [...this.importing.keys()]) if (owners[s] === this.myself) this.importing.delete(s);
  }
}

/** Sort order of claims: higher epoch first, then the lower node id (Redis' tie-break side). */
function beats(a: ClusterNode, b: ClusterNode): number {
  if (a.epoch !== b.epoch) return b.epoch - a.epoch;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function record(n: ClusterNode): NodeRecord {
  return { id: n.id, name: n.name, host: n.host, port: n.port, busHost: n.busHost, busPort: n.busPort, slots: n.slots, inc: n.inc, ver: n.ver, epoch: n.epoch };
}

/** "9000-10000 (b over a); 12000 (c over a and 2 more)", at most MAX_DESCRIBED ranges. */
function describeContests(ranked: readonly ClusterNode[], owner: Int32Array, loser: Int32Array, claims: Uint16Array): string {
  const groups: string[] = [];
  let more = 0;
  let start = -1;
  const key = (s: number): string =>
    loser[s] < 0 ? '' : `${ranked[owner[s]].name} over ${ranked[loser[s]].name}${claims[s] > 2 ? ` and ${claims[s] - 2} more` : ''}`;
  for (let s = 0; s <= SLOT_COUNT; s++) {
    const k = s < SLOT_COUNT ? key(s) : '';
    if (start >= 0 && k !== key(start)) {
      if (groups.length < MAX_DESCRIBED) groups.push(`${start === s - 1 ? start : `${start}-${s - 1}`} (${key(start)})`);
      else more++;
      start = -1;
    }
    if (start < 0 && k !== '') start = s;
  }
  return groups.join('; ') + (more > 0 ? `; and ${more} more ranges` : '');
}
