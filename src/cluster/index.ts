/**
 * Cluster mode from `[cluster]` config: the state (what routing and CLUSTER read) is made before
 * the client port opens, so no command runs unrouted; the gossip bus starts once it is open.
 */
import type { Config } from '../config/index.js';
import { parseHostPort } from '../config/index.js';
import type { Logger } from '../observability/log.js';
import { GossipBus } from './gossip.js';
import { configSlots, countSlots, formatRanges } from './slots.js';
import { ClusterState, describeConflicts } from './state.js';

export { ClusterState } from './state.js';

const WILDCARD = new Set(['', '0.0.0.0', '::', '[::]']);

export class Cluster {
  readonly state: ClusterState;
  private bus: GossipBus | null = null;
  private readonly bindHost: string;
  private readonly advertisedPort: number | null;
  private readonly hostFixed: boolean;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
  ) {
    const c = config.cluster;
    const addr = parseHostPort(config.addr);
    if (!addr.ok) throw new Error(`addr ${config.addr} is not host:port`);
    this.bindHost = addr.host;
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
      busPort: c.port,
      slots: configSlots(c.slot_ranges, c.slots),
      nodeTimeoutMs: c.node_timeout_ms,
      namespaceRouting: c.namespace_routing,
      log,
    });
  }

  /** Starts gossip once the client port is known (it may have been 0: ephemeral). */
  async start(clientPort: number): Promise<void> {
    const c = this.config.cluster;
    const bus = new GossipBus({
      state: this.state,
      bindHost: this.bindHost,
      port: c.port,
      seeds: c.seeds,
      intervalMs: c.gossip_interval_ms,
      secret: c.secret,
      hostFixed: this.hostFixed,
      log: this.log,
    });
    // Ports first: the first gossip message (sent from start) carries them.
    this.state.setSelfAddress(this.state.myself.host, this.advertisedPort ?? clientPort, c.port);
    const busPort = await bus.start();
    this.state.setSelfAddress(this.state.myself.host, this.advertisedPort ?? clientPort, busPort);
    this.bus = bus;
    const me = this.state.myself;
    this.log.info(
      {
        node_id: me.name,
        id: me.id,
        bus_port: busPort,
        seeds: c.seeds,
        slots: formatRanges(me.slots),
        slot_count: countSlots(me.slots),
        namespace_routing: c.namespace_routing,
        authenticated_gossip: c.secret !== undefined,
      },
      'cluster mode: gossip bus listening',
    );
  }

  get busPort(): number {
    return this.bus?.port ?? 0;
  }

  async stop(): Promise<void> {
    await this.bus?.stop();
    this.bus = null;
  }

  /** The `INFO gossip` section: bus counters and slot conflicts. */
  infoFields(): [string, string | number][] {
    const s = this.state;
    const conflicts = s.slotConflicts();
    return [
      ['cluster_node_name', s.myself.name],
      ['cluster_node_id', s.myself.id],
      ['gossip_port', this.busPort],
      ['gossip_messages_sent', s.stats.messagesSent],
      ['gossip_messages_received', s.stats.messagesReceived],
      ['gossip_auth_failures', s.stats.authFailures],
      ['gossip_malformed', s.stats.malformed],
      ['namespace_routing', s.namespaceRouting],
      ['slot_conflicts', conflicts.size],
      ['slot_conflict_ranges', describeConflicts(conflicts)],
    ];
  }
}
