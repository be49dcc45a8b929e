/**
 * This node's replication role: a primary (it streams its committed batches to whoever asks with
 * the right credentials) or a replica of one primary (REPLICAOF, `[replication] replicaof`, or the
 * managed cluster's map). A replica refuses writes; a managed primary that cannot show it still
 * holds its etcd lease refuses them too, so a primary cut off from etcd never takes writes that
 * its promoted replica would not have (no split brain).
 */
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from '../observability/log.js';
import type { Store } from '../storage/store.js';
import { LinkCounters, ReplicaLink, type LinkOptions } from './link.js';
import { ReplicationSource } from './source.js';

export const READONLY_ERROR = "READONLY You can't write against a read only replica.";
export const FENCED_ERROR = 'CLUSTERDOWN The cluster is down';

export interface ReplicationOptions {
  /** Name this node gives itself to its primary. */
  name: string;
  /** Address (host:port) clients reach this node at. */
  addr: () => string;
  backlogBytes: number;
  /** Password to present to the primary (masterauth). */
  masterauth?: string;
  /** Shared secret replicas must present (BLOBREPL AUTH), e.g. the cluster secret. */
  secret?: string;
  /** Long-poll of the replica's stream requests, ms. */
  pollMs?: number;
}

export class Replication {
  readonly source: ReplicationSource;
  private link: ReplicaLink | null = null;
  readonly linkCounters = new LinkCounters();
  /** Clients that presented the secret (BLOBREPL AUTH). */
  private readonly authed = new WeakSet<object>();
  /** Between REPLICAOF and the link's start: writes are refused while those already taken commit. */
  private switching = false;
  /** Set by a managed cluster: whether this primary may take writes now (it holds its lease). */
  mayWrite: () => boolean = () => true;
  /** Told of the replica's applied offset (the managed cluster publishes it in etcd). */
  onOffset: (offset: number) => void = () => {};

  constructor(
    private readonly store: Store,
    private readonly opts: ReplicationOptions,
    private readonly log: Logger,
  ) {
    this.source = new ReplicationSource(store, opts.backlogBytes, log);
    this.source.attach();
  }

  get isReplica(): boolean {
    return this.link !== null;
  }

  get primary(): { host: string; port: number } | null {
    return this.link === null ? null : { host: this.link.opts.host, port: this.link.opts.port };
  }

  /** The error a write gets here now, or null when it may run. */
  refuseWrite(): string | null {
    if (this.link !== null || this.switching) return READONLY_ERROR;
    if (!this.mayWrite()) return FENCED_ERROR;
    return null;
  }

  /** Follows a new primary (or the same one: nothing changes). */
  async follow(host: string, port: number): Promise<void> {
    if (this.link !== null && this.link.opts.host === host && this.link.opts.port === port) return;
    await this.link?.stop();
    this.link = null;
    if (this.source.active) {
      // A primary becoming a replica continues from its own offset: every write it took must be
      // in that offset, so the queued ones commit (and enter the stream) before the hook goes.
      this.switching = true;
      try {
        await this.store.drain();
      } finally {
        this.switching = false;
      }
    }
    this.source.detach();
    const opts: LinkOptions = {
      host,
      port,
      password: this.opts.masterauth,
      secret: this.opts.secret,
      name: this.opts.name,
      addr: this.opts.addr(),
      pollMs: this.opts.pollMs,
    };
    this.log.info({ primary: `${host}:${port}` }, 'replicating from a primary');
    this.link = new ReplicaLink(this.store, opts, this.log, this.source, this.linkCounters, (o) => this.onOffset(o));
  }

  /**
   * REPLICAOF NO ONE / promotion: stops following and takes writes, continuing the offsets under
   * a new replication id; the old one stays valid up to here for the other replicas (replid2).
   */
  async promote(): Promise<void> {
    const link = this.link;
    if (link === null) return;
    this.link = null;
    await link.stop();
    // A link stopped during a copy leaves data of no history: `forget` made the source inactive.
    if (!this.source.active) this.source.adopt(this.source.replid, 0);
    this.source.shiftHistory();
    this.source.attach();
    this.log.info({ offset: this.source.offset, replid: this.source.replid, replid2: this.source.replid2 }, 'replication: this node is a primary now');
  }

  /** The applied offset (replica) or written offset (primary). */
  get offset(): number {
    return this.link === null ? this.source.offset : Math.max(0, this.link.offset);
  }

  secretRequired(): boolean {
    return this.opts.secret !== undefined;
  }

  authenticate(client: object, secret: Buffer): boolean {
    const want = Buffer.from(this.opts.secret ?? '');
    const ok = this.opts.secret !== undefined && secret.length === want.length && timingSafeEqual(secret, want);
    if (ok) this.authed.add(client);
    return ok;
  }

  mayReplicate(client: object): boolean {
    return this.opts.secret === undefined || this.authed.has(client);
  }

  /** ROLE's reply. */
  role(): (string | number | (string | number)[][])[] {
    if (this.link !== null) {
      const l = this.link;
      const state = l.state === 'connected' ? 'connected' : l.state === 'sync' ? 'sync' : 'connect';
      return ['slave', l.opts.host, l.opts.port, state, Math.max(-1, l.offset)];
    }
    return [
      'master',
      this.source.offset,
      this.source.connected().map((r) => {
        const [host, port] = splitAddr(r.addr);
        return [host, String(port), String(r.ackOffset)];
      }),
    ];
  }

  /** INFO replication, in Redis' field names. */
  infoFields(): [string, string | number][] {
    const s = this.source;
    const backlog: [string, string | number][] = [
      ['master_failover_state', 'no-failover'],
      ['master_replid', s.replid],
      ['master_replid2', s.replid2],
      ['master_repl_offset', this.offset],
      // Redis counts the next byte wanted (1-based): the first offset of the new history.
      ['second_repl_offset', s.secondOffset < 0 ? -1 : s.secondOffset + 1],
      ['repl_backlog_active', s.active ? 1 : 0],
      ['repl_backlog_size', this.opts.backlogBytes],
      ['repl_backlog_first_byte_offset', s.backlogFirstOffset],
      ['repl_backlog_histlen', s.backlogLength],
    ];
    if (this.link !== null) {
      const l = this.link;
      return [
        ['role', 'slave'],
        ['master_host', l.opts.host],
        ['master_port', l.opts.port],
        ['master_link_status', l.state === 'connected' ? 'up' : 'down'],
        ['master_last_io_seconds_ago', l.lastIo === 0 ? -1 : Math.floor((Date.now() - l.lastIo) / 1000)],
        ['master_sync_in_progress', l.state === 'sync' ? 1 : 0],
        ['slave_read_repl_offset', Math.max(0, l.offset)],
        ['slave_repl_offset', Math.max(0, l.offset)],
        ['slave_lag_bytes', l.lag],
        // Our own fields: copies taken, resumes without one, chunked values' bytes moved and chunks reused.
        ['full_syncs', this.linkCounters.fullSyncs],
        ['partial_syncs', this.linkCounters.partialSyncs],
        ['repl_blob_bytes_fetched', this.linkCounters.blobBytesFetched],
        ['repl_blob_chunks_reused', this.linkCounters.chunksReused],
        ['slave_priority', 100],
        ['slave_read_only', 1],
        ['replica_announced', 1],
        ['connected_slaves', 0],
        ...backlog,
      ];
    }
    const replicas = s.connected();
    return [
      ['role', 'master'],
      ['connected_slaves', replicas.length],
      ...replicas.map((r, i): [string, string] => {
        const [host, port] = splitAddr(r.addr);
        return [`slave${i}`, `ip=${host},port=${port},state=online,offset=${r.ackOffset},lag=${Math.floor((Date.now() - r.lastSeen) / 1000)}`];
      }),
      ...backlog,
    ];
  }

  async close(): Promise<void> {
    await this.link?.stop();
    this.link = null;
    this.source.close();
  }
}

function splitAddr(addr: string): [string, number] {
  const i = addr.lastIndexOf(':');
  return [addr.slice(0, i), Number(addr.slice(i + 1))];
}
