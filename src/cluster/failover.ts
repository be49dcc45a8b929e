/**
 * Roles in a managed cluster, from etcd's view: a node the map names as a replica follows its
 * shard's primary; a node the map names as primary stops following and takes writes. When a
 * primary's lease is gone, the most up-to-date live replica of its shard (highest published
 * offset, then lowest name) promotes itself by one etcd transaction that holds only if the map is
 * unchanged and the old primary still has no lease; every node then sees the new map (epoch + 1).
 * A primary this node has never seen holding a lease may just be starting: it gets one lease TTL.
 */
import type { Logger } from '../observability/log.js';
import type { Replication } from '../replication/index.js';
import type { EtcdMember, EtcdView } from './etcd.js';
import { formatMap, promote, shardOf } from './map.js';

/** How often a replica publishes its applied offset in etcd, at most. */
const OFFSET_PUBLISH_MS = 250;

/**
 * Whether a primary without a lease is gone, as its replicas must judge it. A missing `alive` key
 * means two things: a primary that held a lease and lost it (etcd's majority expired or revoked
 * it: gone now), or one that has not registered yet — a node opens its client port before its
 * lease is granted, so a map can name a primary that is still starting. Taking over from that one
 * swaps the shard's roles for good. So a primary never seen alive counts as gone only after it
 * has been missing for one lease TTL: as long as etcd would have waited had it died holding one.
 */
export class PrimaryAbsence {
  private readonly seenAlive = new Set<string>();
  private readonly missingSince = new Map<string, number>();

  constructor(private readonly graceMs: number) {}

  /** Records the nodes that hold a lease in a view. */
  see(alive: Iterable<string>): void {
    for (const name of alive) {
      this.seenAlive.add(name);
      this.missingSince.delete(name);
    }
  }

  /** Whether primary `name`, holding a lease or not (`alive`) at `now`, may be replaced. */
  gone(name: string, alive: boolean, now: number): boolean {
    if (alive) {
      this.see([name]);
      return false;
    }
    if (this.seenAlive.has(name)) return true;
    const since = this.missingSince.get(name) ?? now;
    this.missingSince.set(name, since);
    return now - since >= this.graceMs;
  }
}

export class ManagedRoles {
  private promoting = false;
  private lastPublished = 0;
  private publishTimer: NodeJS.Timeout | null = null;
  private pendingOffset = 0;
  private stopped = false;
  private readonly absence: PrimaryAbsence;
  /** The never-seen primary this replica last said it waits for (logged once). */
  private waitingFor: string | null = null;
  /** Kill-to-promotion figures for INFO and tests: when this node last promoted itself. */
  promotedAt = 0;

  constructor(
    private readonly etcd: EtcdMember,
    private readonly replication: Replication,
    private readonly name: string,
    private readonly log: Logger,
  ) {
    this.absence = new PrimaryAbsence(etcd.leaseTtlMs);
    replication.mayWrite = () => etcd.holdsLease();
    replication.onOffset = (offset) => this.publish(offset);
  }

  private publish(offset: number): void {
    this.pendingOffset = offset;
    if (this.publishTimer !== null || this.stopped) return;
    const wait = Math.max(0, this.lastPublished + OFFSET_PUBLISH_MS - Date.now());
    this.publishTimer = setTimeout(() => {
      this.publishTimer = null;
      this.lastPublished = Date.now();
      this.etcd.publishOffset(this.pendingOffset).catch((err: Error) => this.log.warn({ err: err.message }, 'could not publish the replication offset'));
    }, wait);
  }

  async onView(view: EtcdView): Promise<void> {
    this.absence.see(view.alive.keys());
    const map = view.map;
    if (map === null || this.stopped) return;
    const shard = shardOf(map, this.name);
    if (shard === null) return;
    if (shard.primary === this.name) {
      if (this.replication.isReplica) {
        await this.replication.promote();
        this.log.warn({ epoch: map.epoch }, 'this node is its shard\'s primary now');
      }
      return;
    }
    const primary = view.members.get(shard.primary);
    if (primary !== undefined) await this.replication.follow(primary.host, primary.port);
    const alive = view.alive.has(shard.primary);
    if (!this.absence.gone(shard.primary, alive, Date.now())) {
      if (!alive && this.waitingFor !== shard.primary) {
        this.waitingFor = shard.primary;
        this.log.info({ primary: shard.primary, wait_ms: this.etcd.leaseTtlMs }, 'the shard\'s primary has not registered in etcd yet: waiting for it before taking over');
      }
      return;
    }
    if (this.promoting) return;
    // The primary has no lease: etcd's majority says it is gone. The best live replica takes over.
    const candidates = shard.replicas
      .filter((r) => view.alive.has(r))
      .sort((a, b) => view.alive.get(b)!.offset - view.alive.get(a)!.offset || (a < b ? -1 : 1));
    if (candidates[0] !== this.name) return;
    this.promoting = true;
    try {
      const next = promote(map, this.name);
      const c = this.etcd.client;
      const mapKey = `${this.etcd.prefix}/map`;
      const res = await c
        .if(mapKey, 'Mod', '==', view.mapRevision)
        .and(`${this.etcd.prefix}/alive/${shard.primary}`, 'Create', '==', 0)
        .then(c.put(mapKey).value(formatMap(next)))
        .commit();
      if (res.succeeded) {
        this.promotedAt = Date.now();
        this.log.warn({ old_primary: shard.primary, epoch: next.epoch, offset: this.replication.offset }, 'failover: promoted this replica in etcd');
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'failover: promotion transaction failed');
    } finally {
      this.promoting = false;
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.publishTimer !== null) clearTimeout(this.publishTimer);
  }
}
