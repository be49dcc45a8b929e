/**
 * Roles in a managed cluster, from etcd's view: a node the map names as a replica follows its
 * shard's primary; a node the map names as primary stops following and takes writes. When a
 * primary's lease is gone, the most up-to-date live replica of its shard (highest published
 * offset, then lowest name) promotes itself by one etcd transaction that holds only if the map is
 * unchanged and the old primary still has no lease; every node then sees the new map (epoch + 1).
 */
import type { Logger } from '../observability/log.js';
import type { Replication } from '../replication/index.js';
import type { EtcdMember, EtcdView } from './etcd.js';
import { formatMap, promote, shardOf } from './map.js';

/** How often a replica publishes its applied offset in etcd, at most. */
const OFFSET_PUBLISH_MS = 250;

export class ManagedRoles {
  private promoting = false;
  private lastPublished = 0;
  private publishTimer: NodeJS.Timeout | null = null;
  private pendingOffset = 0;
  private stopped = false;
  /** Kill-to-promotion figures for INFO and tests: when this node last promoted itself. */
  promotedAt = 0;

  constructor(
    private readonly etcd: EtcdMember,
    private readonly replication: Replication,
    private readonly name: string,
    private readonly log: Logger,
  ) {
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
    if (view.alive.has(shard.primary) || this.promoting) return;
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
