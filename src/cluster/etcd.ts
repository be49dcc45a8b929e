/**
 * A managed cluster's link to etcd: this node's registration (a persistent member record and an
 * `alive` key on a lease), the watched view of every node and of the slot map, and compare-and-swap
 * updates of the map. etcd decides membership: a node whose lease expired is failed for everyone,
 * because etcd's Raft majority expired it, not because one peer stopped hearing from it.
 *
 * Keys under `<prefix>` (`/blobasaur/<cluster_name>`):
 *   map              the slot map (cluster/map.ts), changed only by CAS on its mod revision
 *   members/<name>   {name, host, port}: how clients reach the node; kept while it is down
 *   alive/<name>     {inc, offset}: on the node's lease; gone within the lease TTL after it dies
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Etcd3, IOptions, Lease, Watcher } from 'etcd3';
import type { Logger } from '../observability/log.js';
import { formatMap, MapError, parseMap, type ClusterMap, type MemberRecord } from './map.js';

export interface EtcdSettings {
  hosts: string[];
  /** Key prefix, `/blobasaur/<cluster_name>`. */
  prefix: string;
  username?: string;
  password?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** Lease TTL in seconds: how long after a node dies etcd declares it failed. */
  leaseTtlS: number;
}

/** What a live node publishes on its lease. */
export interface AliveRecord {
  /** Start time of the process (ms): a restarted node has a new one. */
  inc: number;
  /** Replication offset (replicas: applied; primaries: written), for choosing whom to promote. */
  offset: number;
}

export interface EtcdView {
  map: ClusterMap | null;
  /** The map key's mod revision ('0' when absent): the CAS condition of the next change. */
  mapRevision: string;
  members: ReadonlyMap<string, MemberRecord>;
  alive: ReadonlyMap<string, AliveRecord>;
}

export function etcdPrefix(clusterName: string): string {
  return `/blobasaur/${clusterName}`;
}

/**
 * etcd3 brings gRPC and protobufjs: ~20 MiB of RSS (measured on Node 20), which a server without
 * a managed cluster should not carry. It is loaded by the first client made, not at import.
 */
const requireLazily = createRequire(import.meta.url);

/** The etcd3 client for these settings (also used by the `blobasaur cluster` CLI). */
export function etcdClient(s: Omit<EtcdSettings, 'leaseTtlS' | 'prefix'>): Etcd3 {
  const opts: IOptions = { hosts: s.hosts, dialTimeout: 3000 };
  if (s.username !== undefined) opts.auth = { username: s.username, password: s.password ?? '' };
  if (s.caFile !== undefined) {
    opts.credentials = {
      rootCertificate: readFileSync(s.caFile),
      ...(s.keyFile === undefined ? {} : { privateKey: readFileSync(s.keyFile) }),
      ...(s.certFile === undefined ? {} : { certChain: readFileSync(s.certFile) }),
    };
  }
  const { Etcd3: Client } = requireLazily('etcd3') as typeof import('etcd3');
  return new Client(opts);
}

/** Reads the map and its revision. */
export async function readMap(client: Etcd3, prefix: string): Promise<{ map: ClusterMap | null; revision: string }> {
  const res = await client.get(`${prefix}/map`).exec();
  const kv = res.kvs[0];
  if (kv === undefined) return { map: null, revision: '0' };
  return { map: parseMap(kv.value.toString()), revision: kv.mod_revision };
}

/**
 * Changes the map by compare-and-swap: reads it, applies `change`, writes the result only if
 * nobody wrote the map in between (same mod revision; absent for a first map), retrying a few
 * times on a lost race. `change` may throw MapError to refuse. The new epoch must be the old + 1.
 */
export async function updateMap(client: Etcd3, prefix: string, change: (map: ClusterMap | null) => ClusterMap): Promise<ClusterMap> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const { map, revision } = await readMap(client, prefix);
    const next = change(map);
    if (next.epoch !== (map?.epoch ?? 0) + 1) throw new MapError(`a map change must bump the epoch by one (${map?.epoch ?? 0} -> ${next.epoch})`);
    const key = `${prefix}/map`;
    const txn = revision === '0' ? client.if(key, 'Create', '==', 0) : client.if(key, 'Mod', '==', revision);
    const res = await txn.then(client.put(key).value(formatMap(next))).commit();
    if (res.succeeded) return next;
    await new Promise((r) => setTimeout(r, 10 + Math.random() * 40));
  }
  throw new MapError('the slot map kept changing; try again');
}

export class EtcdMember {
  readonly client: Etcd3;
  private lease: Lease | null = null;
  private watcher: Watcher | null = null;
  private map: ClusterMap | null = null;
  private mapRevision = '0';
  private readonly members = new Map<string, MemberRecord>();
  private readonly alive = new Map<string, AliveRecord>();
  private stopped = false;
  /** When the last keepalive that etcd answered was sent: the lease runs at least TTL from then. */
  private renewedAt = 0;
  private lastFired = 0;
  private offset = 0;
  private readonly inc = Date.now();
  private notifyQueued = false;

  constructor(
    private readonly settings: EtcdSettings,
    private readonly self: MemberRecord,
    private readonly log: Logger,
    private readonly onView: (view: EtcdView) => void,
    /** Called when the lease is lost (this node may already be replaced) and when it is held again. */
    private readonly onLease: (held: boolean) => void = () => {},
  ) {
    this.client = etcdClient(settings);
  }

  get prefix(): string {
    return this.settings.prefix;
  }

  get leaseTtlMs(): number {
    return this.settings.leaseTtlS * 1000;
  }

  /**
   * Whether this node still surely holds its lease: the last answered keepalive was sent less
   * than a TTL ago (minus a margin for clock rate). A primary that cannot say so stops writing.
   */
  holdsLease(now = Date.now()): boolean {
    return this.lease !== null && now - this.renewedAt < this.settings.leaseTtlS * 1000 - 250;
  }

  async start(): Promise<void> {
    await this.client.put(`${this.prefix}/members/${this.self.name}`).value(JSON.stringify(this.self));
    await this.register();
    const all = await this.client.getAll().prefix(`${this.prefix}/`).exec();
    for (const kv of all.kvs) this.absorb(kv.key.toString(), kv.value.toString(), kv.mod_revision);
    const startRevision = String(BigInt(all.header.revision) + 1n);
    this.watcher = await this.client.watch().prefix(`${this.prefix}/`).startRevision(startRevision).create();
    this.watcher.on('put', (kv) => {
      this.absorb(kv.key.toString(), kv.value.toString(), kv.mod_revision);
      this.notify();
    });
    this.watcher.on('delete', (kv) => {
      this.forget(kv.key.toString());
      this.notify();
    });
    this.watcher.on('disconnected', (err) => this.log.warn({ err: err.message }, 'etcd watch disconnected; reconnecting'));
    this.watcher.on('error', (err) => this.log.warn({ err: err.message }, 'etcd watch error'));
    this.onView(this.view());
  }

  /** Grants a lease and puts this node's alive key on it. */
  private async register(): Promise<void> {
    const lease = this.client.lease(this.settings.leaseTtlS, { autoKeepAlive: true });
    const grantedAt = Date.now();
    lease.on('keepaliveFired', () => (this.lastFired = Date.now()));
    lease.on('keepaliveSucceeded', (res) => {
      if (Number(res.TTL) > 0) this.renewedAt = this.lastFired;
    });
    lease.on('lost', (err) => this.leaseLost(lease, err.message));
    await lease.put(`${this.prefix}/alive/${this.self.name}`).value(this.aliveText());
    this.renewedAt = grantedAt;
    this.lease = lease;
    this.onLease(true);
  }

  private leaseLost(lease: Lease, why: string): void {
    if (this.lease !== lease || this.stopped) return;
    this.lease = null;
    this.log.error({ err: why }, 'etcd lease lost: this node is failed for the cluster until it registers again');
    this.onLease(false);
    lease.release();
    void this.reRegister();
  }

  private async reRegister(): Promise<void> {
    while (!this.stopped && this.lease === null) {
      try {
        await this.register();
        this.log.info('registered again in etcd with a new lease');
        return;
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'etcd registration failed; retrying');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private aliveText(): string {
    return JSON.stringify({ inc: this.inc, offset: this.offset } satisfies AliveRecord);
  }

  /** Publishes this node's replication offset on its alive key (for choosing whom to promote). */
  async publishOffset(offset: number): Promise<void> {
    this.offset = offset;
    if (this.lease === null) return;
    await this.lease.put(`${this.prefix}/alive/${this.self.name}`).value(this.aliveText());
  }

  /** Changes the slot map by CAS (see updateMap). */
  async update(change: (map: ClusterMap | null) => ClusterMap): Promise<ClusterMap> {
    return updateMap(this.client, this.prefix, change);
  }

  view(): EtcdView {
    return { map: this.map, mapRevision: this.mapRevision, members: this.members, alive: this.alive };
  }

  private notify(): void {
    // One view per burst of events (a transaction's puts arrive together).
    if (this.notifyQueued) return;
    this.notifyQueued = true;
    queueMicrotask(() => {
      this.notifyQueued = false;
      if (!this.stopped) this.onView(this.view());
    });
  }

  private absorb(key: string, value: string, revision: string): void {
    const rest = key.slice(this.prefix.length + 1);
    try {
      if (rest === 'map') {
        this.map = parseMap(value);
        this.mapRevision = revision;
      } else if (rest.startsWith('members/')) {
        const m = JSON.parse(value) as MemberRecord;
        if (typeof m.host === 'string' && Number.isInteger(m.port)) this.members.set(rest.slice(8), { name: rest.slice(8), host: m.host, port: m.port });
      } else if (rest.startsWith('alive/')) {
        const a = JSON.parse(value) as AliveRecord;
        this.alive.set(rest.slice(6), { inc: Number(a.inc) || 0, offset: Number(a.offset) || 0 });
      }
    } catch (err) {
      this.log.warn({ key, err: (err as Error).message }, 'etcd: ignoring a malformed cluster key');
    }
  }

  private forget(key: string): void {
    const rest = key.slice(this.prefix.length + 1);
    if (rest === 'map') {
      this.map = null;
      this.mapRevision = '0';
    } else if (rest.startsWith('members/')) this.members.delete(rest.slice(8));
    else if (rest.startsWith('alive/')) this.alive.delete(rest.slice(6));
  }

  /** Leaves: revokes the lease (the cluster sees this node down at once) and closes the client. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.watcher?.cancel().catch(() => {});
    const lease = this.lease;
    this.lease = null;
    if (lease !== null) await lease.revoke().catch(() => lease.release());
    this.client.close();
  }
}
