/**
 * Cluster mode from `[cluster]` config: the state (what routing and CLUSTER read) is made before
 * the client port opens, so no command runs unrouted; the gossip bus starts once it is open.
 */
import type { Config } from '../config/index.js';
import { parseHostPort } from '../config/index.js';
import { isLoopbackHost } from '../config/addr.js';
import type { Logger } from '../observability/log.js';
import { GossipBus } from './gossip.js';
import { EtcdMember, etcdPrefix, updateMap, type EtcdView } from './etcd.js';
import { assignSlots, MapError, slotOwners } from './map.js';
import { nodeIdFor, type ManagedNode } from './state.js';
import { configSlots, countSlots, formatRanges } from './slots.js';
import { ClusterState } from './state.js';

export { ClusterState } from './state.js';

const WILDCARD = new Set(['', '0.0.0.0', '::', '[::]']);
export const DEFAULT_BUS_PORT = 7000;

/**
 * Where the bus listens: `bus_addr`, else loopback on `port`. The loopback default keeps gossip,
 * which decides where clients are sent, away from the network until the operator sets both a
 * bus address and a secret. `addr`'s own host is kept when it is a loopback address (`::1`).
 */
export function busListenAddress(config: Config): { host: string; port: number } {
  const c = config.cluster;
  if (c.bus_addr !== undefined) {
    const bus = parseHostPort(c.bus_addr);
    if (!bus.ok) throw new Error(`cluster.bus_addr ${c.bus_addr} is not host:port`);
    return { host: bus.host, port: bus.port };
  }
  const addr = parseHostPort(config.addr);
  const host = addr.ok && isLoopbackHost(addr.host) ? addr.host : '127.0.0.1';
  return { host, port: c.port ?? DEFAULT_BUS_PORT };
}

/** The start-up refusal for a bus reachable from the network without a secret; null when fine. */
export function unsafeBusReason(config: Config): string | null {
  const c = config.cluster;
  if (!c.enabled || c.secret !== undefined || c.etcd.length > 0) return null;
  const bus = busListenAddress(config);
  if (isLoopbackHost(bus.host)) return null;
  const shown = bus.host.includes(':') ? `[${bus.host}]:${bus.port}` : `${bus.host}:${bus.port}`;
  return (
    `the cluster bus would listen on ${shown}, beyond loopback, without [cluster] secret: anyone who can reach ` +
    `it could forge gossip and redirect clients. Set the same secret on every node under [cluster] ` +
    `(secret = "<at least 16 characters>", e.g. the output of \`openssl rand -hex 32\`), or keep the bus on ` +
    `this machine with bus_addr = "127.0.0.1:${bus.port}".`
  );
}

/** etcd already assigns the slot as asked: nothing to write (carries that map's epoch). */
class Unchanged extends Error {
  constructor(readonly epoch: number) {
    super('unchanged');
  }
}

export class Cluster {
  readonly state: ClusterState;
  private bus: GossipBus | null = null;
  /** Managed mode (`[cluster] etcd`): the etcd registration and watch; null with gossip. */
  etcd: EtcdMember | null = null;
  /** Called with every new etcd view, after the state has taken it in (replication follows it). */
  onManagedView: (view: EtcdView) => void = () => {};
  private readonly bindHost: string;
  private readonly bindPort: number;
  private readonly advertisedPort: number | null;
  private readonly hostFixed: boolean;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
  ) {
    const c = config.cluster;
    // addr = "" (no plaintext port): clients reach this node on its TLS address.
    const addr = parseHostPort(config.addr === '' ? (config.tls_addr ?? '') : config.addr);
    if (!addr.ok) throw new Error(`addr ${config.addr} is not host:port`);
    const unsafe = unsafeBusReason(config);
    if (unsafe !== null) throw new Error(unsafe);
    const bus = busListenAddress(config);
    this.bindHost = bus.host;
    this.bindPort = bus.port;
    let host = WILDCARD.has(addr.host) ? '' : addr.host;
    this.advertisedPort = null;
    if (c.advertise_addr !== undefined) {
      const adv = parseHostPort(c.advertise_addr);
      if (!adv.ok) throw new Error(`cluster.advertise_addr ${c.advertise_addr} is not host:port`);
      host = adv.host;
      this.advertisedPort = adv.port;
    }
    this.hostFixed = host !== '';
    if (c.node_timeout_ms < 3 * c.gossip_interval_ms) {
      log.warn(
        { node_timeout_ms: c.node_timeout_ms, gossip_interval_ms: c.gossip_interval_ms },
        'cluster: node_timeout_ms is under three gossip intervals; healthy nodes may be flagged fail',
      );
    }
    this.state = new ClusterState({
      name: c.node_id,
      host,
      port: this.advertisedPort ?? addr.port,
      // Peers dial the bus at its own host when it is a specific address, else at `host`.
      busHost: WILDCARD.has(bus.host) ? '' : bus.host,
      busPort: bus.port,
      slots: configSlots(c.slot_ranges, c.slots),
      epoch: c.config_epoch,
      nodeTimeoutMs: c.node_timeout_ms,
      namespaceRouting: c.namespace_routing,
      log,
    });
  }

  get managed(): boolean {
    return this.config.cluster.etcd.length > 0;
  }

  /** Starts gossip (or the etcd registration) once the client port is known (it may have been 0). */
  async start(clientPort: number): Promise<void> {
    if (this.managed) return this.startManaged(clientPort);
    const c = this.config.cluster;
    const bus = new GossipBus({
      state: this.state,
      bindHost: this.bindHost,
      port: this.bindPort,
      seeds: c.seeds,
      intervalMs: c.gossip_interval_ms,
      secret: c.secret,
      hostFixed: this.hostFixed,
      log: this.log,
    });
    // Ports first: the first gossip message (sent from start) carries them.
    this.state.setSelfAddress(this.state.myself.host, this.advertisedPort ?? clientPort, this.bindPort);
    const busPort = await bus.start();
    this.state.setSelfAddress(this.state.myself.host, this.advertisedPort ?? clientPort, busPort);
    this.bus = bus;
    const me = this.state.myself;
    this.log.info(
      {
        node_id: me.name,
        id: me.id,
        bus_addr: `${this.bindHost.includes(':') ? `[${this.bindHost}]` : this.bindHost}:${busPort}`,
        config_epoch: me.epoch,
        seeds: c.seeds,
        slots: formatRanges(me.slots),
        slot_count: countSlots(me.slots),
        namespace_routing: c.namespace_routing,
        authenticated_gossip: c.secret !== undefined,
      },
      'cluster mode: gossip bus listening',
    );
    const remoteSeed = c.seeds.some((seed) => {
      const p = parseHostPort(seed);
      return p.ok && !isLoopbackHost(p.host);
    });
    if (isLoopbackHost(this.bindHost) && remoteSeed) {
      this.log.warn(
        { bus_addr: this.bindHost, seeds: c.seeds },
        'cluster: the bus listens on loopback only, so seeds on other machines cannot reach this node; set [cluster] bus_addr and secret',
      );
    }
  }

  private async startManaged(clientPort: number): Promise<void> {
    const c = this.config.cluster;
    const port = this.advertisedPort ?? clientPort;
    const host = this.state.myself.host === '' ? '127.0.0.1' : this.state.myself.host;
    this.state.setSelfAddress(host, port, 0);
    const member = new EtcdMember(
      {
        hosts: c.etcd,
        prefix: etcdPrefix(c.cluster_name),
        username: c.etcd_username,
        password: c.etcd_password,
        caFile: c.etcd_ca_file,
        certFile: c.etcd_cert_file,
        keyFile: c.etcd_key_file,
        leaseTtlS: c.lease_ttl_s,
      },
      { name: c.node_id, host, port },
      this.log,
      (view) => {
        this.state.offsets = new Map([...view.alive].map(([name, a]) => [nodeIdFor(name), a.offset]));
        this.state.applyManaged(view.map?.epoch ?? 0, managedNodes(view));
        this.onManagedView(view);
      },
    );
    this.etcd = member;
    this.state.assignSlot = async (slot, owner) => {
      let epoch: number;
      try {
        epoch = (
          await updateMap(member.client, member.prefix, (m) => {
            if (m === null) throw new MapError('this cluster has no slot map yet');
            if (slotOwners(m)[slot] === owner) throw new Unchanged(m.epoch);
            return assignSlots(m, slot, slot, owner);
          })
        ).epoch;
      } catch (err) {
        if (!(err instanceof Unchanged)) throw err;
        epoch = err.epoch;
      }
      // Answer once this node routes by that map, so a client told OK is never sent back.
      const deadline = Date.now() + 5000;
      while (this.state.currentEpoch() < epoch && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    };
    await member.start();
    this.log.info(
      { node_id: c.node_id, id: this.state.myself.id, etcd: c.etcd, prefix: member.prefix, lease_ttl_s: c.lease_ttl_s, epoch: this.state.myself.epoch },
      'cluster mode: managed through etcd',
    );
  }

  get busPort(): number {
    return this.bus?.port ?? 0;
  }

  async stop(): Promise<void> {
    await this.bus?.stop();
    this.bus = null;
    await this.etcd?.stop();
    this.etcd = null;
  }

  /** The `INFO gossip` section: bus counters and slot conflicts. */
  infoFields(): [string, string | number][] {
    const s = this.state;
    const conflicts = s.slotConflicts();
    const st = s.stats;
    return [
      ['cluster_node_name', s.myself.name],
      ['cluster_node_id', s.myself.id],
      ['gossip_port', this.busPort],
      ['gossip_messages_sent', s.stats.messagesSent],
      ['gossip_messages_received', s.stats.messagesReceived],
      ['gossip_auth_failures', st.authFailures],
      ['gossip_malformed', st.malformed],
      ['gossip_replays', st.replays],
      ['gossip_stale', st.stale],
      ['gossip_nodes_refused', st.nodesRefused],
      ['gossip_connections_refused', st.connectionsRefused],
      ['known_nodes', s.size],
      ['namespace_routing', s.namespaceRouting],
      ['slot_conflicts', conflicts.count],
      ['slot_conflict_ranges', conflicts.ranges],
    ];
  }
}

/**
 * The nodes a view shows: every node in the slot map (primaries with their slots, replicas with
 * their primary), then live nodes not yet in the map (primaries without slots, as Redis shows a
 * node that has met the cluster). A node without a member record has no address yet and waits.
 */
export function managedNodes(view: EtcdView): ManagedNode[] {
  const out: ManagedNode[] = [];
  const seen = new Set<string>();
  const add = (name: string, slots: ManagedNode['slots'], replicaOf: string | null): void => {
    const m = view.members.get(name);
    if (m === undefined || seen.has(name)) return;
    seen.add(name);
    out.push({ name, host: m.host, port: m.port, slots, replicaOf, alive: view.alive.has(name) });
  };
  for (const s of view.map?.shards ?? []) {
    add(s.primary, s.slots, null);
    for (const r of s.replicas) add(r, [], s.primary);
  }
  for (const name of view.alive.keys()) add(name, [], null);
  return out;
}
