import { z } from 'zod';
import { isLoopbackHost, parseHostPort } from './addr.js';

const MiB = 1024 * 1024;
const INT32_MAX = 2 ** 31 - 1;
const MAX_SLOT = 16383;

/**
 * "allowed" text for schemas whose real constraint lives in a refinement, where the error
 * formatter's introspection (enum values, numeric bounds) can't see it.
 */
export const allowedHints = z.registry<{ allowed: string }>();

function int(min: number, max?: number): z.ZodNumber {
  const n = z.number().int().min(min);
  return max === undefined ? n : n.max(max);
}

function hostPort(minPort: 0 | 1): z.ZodString {
  const allowed = `"host:port" with port ${minPort}..65535, e.g. "127.0.0.1:6379" or "[::1]:6379"`;
  const s = z.string().superRefine((value, ctx) => {
    const parsed = parseHostPort(value);
    if (!parsed.ok) {
      ctx.addIssue({ code: 'custom', message: parsed.reason, params: { allowed } });
    } else if (parsed.port < minPort) {
      // Port 0 (ephemeral) is fine for a listener but meaningless for an address others dial.
      ctx.addIssue({ code: 'custom', message: `port 0 cannot be dialled by other nodes`, params: { allowed } });
    }
  });
  allowedHints.add(s, { allowed });
  return s;
}

/** A listen address, or "" for no listener at all (the plaintext port when TLS serves alone). */
function hostPortOrOff(): z.ZodString {
  const allowed = `"host:port" with port 0..65535, e.g. "127.0.0.1:6379" or "[::1]:6379", or "" for no plaintext listener (needs tls_addr)`;
  const s = z.string().superRefine((value, ctx) => {
    if (value === '') return;
    const parsed = parseHostPort(value);
    if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.reason, params: { allowed } });
  });
  allowedHints.add(s, { allowed });
  return s;
}

// ---- storage compression -------------------------------------------------------------------

export const COMPRESSION_ALGORITHMS = ['none', 'gzip', 'zstd', 'lz4', 'brotli'] as const;
export type CompressionAlgorithm = (typeof COMPRESSION_ALGORITHMS)[number];

interface LevelSpec {
  range: { min: number; max: number } | null;
  default: number;
}

const LEVELS: Record<CompressionAlgorithm, LevelSpec> = {
  // Nothing to tune; 0 is only a placeholder so `level` is always a number in the output.
  none: { range: null, default: 0 },
  // zlib's own default.
  gzip: { range: { min: 1, max: 9 }, default: 6 },
  // zstd's own default (ZSTD_CLEVEL_DEFAULT). Negative "fast" levels are not exposed.
  zstd: { range: { min: 1, max: 22 }, default: 3 },
  // lz4-napi (lz4_flex) has no compression levels at all, so the only honest value is 1;
  // accepting 2..12 would promise a speed/ratio trade-off that never happens.
  lz4: { range: { min: 1, max: 1 }, default: 1 },
  // zlib defaults brotli to 11 (BROTLI_DEFAULT_QUALITY), which is far too slow for a write
  // path; 6 is the balance most servers (nginx, caddy setups) use for dynamic content.
  brotli: { range: { min: 0, max: 11 }, default: 6 },
};

/** Inclusive level bounds, or null when the algorithm takes no level. */
export function levelRange(algorithm: CompressionAlgorithm): { min: number; max: number } | null {
  return LEVELS[algorithm].range;
}

export function defaultLevel(algorithm: CompressionAlgorithm): number {
  return LEVELS[algorithm].default;
}

function levelAllowedText(algorithm: CompressionAlgorithm): string {
  const range = levelRange(algorithm);
  if (range === null) return `omit "level" when algorithm = "none"`;
  if (algorithm === 'lz4') return `omit "level" or set it to 1 (lz4 has no compression levels)`;
  return `${range.min}..${range.max} for "${algorithm}" (omit for the default, ${defaultLevel(algorithm)})`;
}

const storageCompressionSchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('compress blobs before writing them to SQLite'),
    algorithm: z.enum(COMPRESSION_ALGORITHMS).default('zstd').describe('compression algorithm for stored blobs'),
    level: z.number().int().optional().describe('compression level; range depends on the algorithm'),
  })
  .superRefine((v, ctx) => {
    if (v.level === undefined) return;
    const range = levelRange(v.algorithm);
    const allowed = levelAllowedText(v.algorithm);
    if (range === null) {
      ctx.addIssue({ code: 'custom', path: ['level'], message: `algorithm "none" takes no level, got ${v.level}`, params: { allowed } });
    } else if (v.level < range.min || v.level > range.max) {
      ctx.addIssue({ code: 'custom', path: ['level'], message: `level ${v.level} is out of range for algorithm "${v.algorithm}"`, params: { allowed } });
    }
  })
  .transform((v) => ({ ...v, level: v.level ?? defaultLevel(v.algorithm) }));

// ---- other tables ---------------------------------------------------------------------------

const sqliteSchema = z.strictObject({
  synchronous: z.enum(['OFF', 'NORMAL', 'FULL']).default('NORMAL').describe('SQLite PRAGMA synchronous for every shard'),
  cache_size_mb: int(0).default(16).describe('SQLite page cache per shard, in MiB'),
  busy_timeout_ms: int(0).default(5000).describe('how long SQLite waits on a locked database, in ms'),
  mmap_size_mb: int(0).default(0).describe('SQLite mmap_size per shard, in MiB (0 = off)'),
  locking_mode: z
    .enum(['NORMAL', 'EXCLUSIVE'])
    .default('NORMAL')
    .describe('SQLite locking_mode: EXCLUSIVE roughly halves per-operation cost but locks other processes out of the shard files'),
});

const slotRangeSchema = z
  .strictObject({
    start: int(0, MAX_SLOT).describe('first slot of the range (inclusive)'),
    end: int(0, MAX_SLOT).describe('last slot of the range (inclusive)'),
  })
  .superRefine((r, ctx) => {
    if (r.start > r.end) {
      ctx.addIssue({
        code: 'custom',
        path: ['end'],
        message: `end ${r.end} is before start ${r.start}`,
        params: { allowed: `start <= end, both 0..${MAX_SLOT}` },
      });
    }
  });

const clusterSchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('join a cluster instead of running standalone'),
    node_id: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,128}$/, 'node_id must be 1..128 letters, digits, ".", "_" or "-"')
      .default('node-1')
      .describe('unique name of this node in the cluster'),
    seeds: z.array(hostPort(1)).default([]).describe('gossip addresses of nodes to contact on startup'),
    advertise_addr: hostPort(1).optional().describe('address other nodes should use to reach this one'),
    bus_addr: hostPort(0)
      .optional()
      .describe('listen address of the cluster bus (default 127.0.0.1:<port>); beyond loopback it needs a secret'),
    port: int(0, 65535).optional().describe('cluster bus port when bus_addr is not set (default 7000)'),
    gossip_interval_ms: int(10).default(1000).describe('how often gossip messages are sent, in ms'),
    node_timeout_ms: int(100).default(15000).describe('silence after which a node is considered failed, in ms'),
    slot_ranges: z.array(slotRangeSchema).default([]).describe('hash-slot ranges owned by this node'),
    slots: z.array(int(0, MAX_SLOT)).default([]).describe('individual hash slots owned by this node'),
    config_epoch: int(0, Number.MAX_SAFE_INTEGER)
      .default(0)
      .describe('epoch of this node\'s slot claims: when two nodes claim a slot, the higher epoch (then the lower node id) serves it'),
    namespace_routing: z.enum(['namespace', 'field']).default('namespace').describe('whether HSET-style keys route by namespace (key) or by field'),
    secret: z.string().min(16).optional().describe('shared secret (16+ characters) authenticating gossip messages; required when bus_addr is not loopback'),
    etcd: z
      .array(z.string().regex(/^https?:\/\/\S+$/, 'an etcd endpoint is http://host:port or https://host:port'))
      .default([])
      .describe('etcd endpoints: when set, the cluster is managed through etcd (membership, slot map, failover) instead of gossip'),
    cluster_name: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'cluster_name must be 1..64 letters, digits, ".", "_" or "-"')
      .default('default')
      .describe('name of the managed cluster: its keys in etcd are under /blobasaur/<cluster_name>/'),
    etcd_username: z.string().min(1).optional().describe('etcd user (etcd authentication)'),
    etcd_password: z.string().optional().describe('password of etcd_username'),
    etcd_ca_file: z.string().min(1).optional().describe('CA certificate (PEM) to verify etcd over https'),
    etcd_cert_file: z.string().min(1).optional().describe('client certificate (PEM) for etcd over https'),
    etcd_key_file: z.string().min(1).optional().describe('private key (PEM) of etcd_cert_file'),
    lease_ttl_s: int(1, 600).default(5).describe('etcd lease TTL in seconds: a node silent this long is failed (and its replica promoted)'),
  })
  .superRefine((c, ctx) => {
    if (c.etcd.length > 0 && (c.slot_ranges.length > 0 || c.slots.length > 0 || c.seeds.length > 0)) {
      ctx.addIssue({
        code: 'custom',
        path: ['etcd'],
        message: 'a managed cluster (etcd) takes its slots and members from etcd, not from slot_ranges, slots or seeds',
        params: { allowed: 'either etcd = [...] or seeds/slot_ranges, not both' },
      });
    }
    if ((c.etcd_cert_file === undefined) !== (c.etcd_key_file === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['etcd_key_file'], message: 'etcd_cert_file and etcd_key_file go together', params: { allowed: 'both or neither' } });
    }
    const bus = c.bus_addr === undefined ? null : parseHostPort(c.bus_addr);
    if (bus?.ok === true && c.port !== undefined && c.port !== bus.port) {
      ctx.addIssue({
        code: 'custom',
        path: ['port'],
        message: `port ${c.port} differs from the port of bus_addr ${c.bus_addr}`,
        params: { allowed: 'set the bus port in bus_addr only (or port only, for a loopback bus)' },
      });
    }
    // Gossip decides where clients are sent: on the network it must be authenticated.
    if (c.enabled && bus?.ok === true && !isLoopbackHost(bus.host) && c.secret === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['secret'],
        message: `the cluster bus would listen on ${c.bus_addr}, beyond loopback, without a secret: anyone who can reach it could forge gossip and redirect clients`,
        params: {
          allowed: 'the same secret on every node (secret = "<16+ characters>", e.g. from `openssl rand -hex 32`), or bus_addr = "127.0.0.1:<port>" to keep the bus on this machine',
        },
      });
    }
  });

const replicationSchema = z.strictObject({
  replicaof: hostPort(1).optional().describe('host:port of the primary this node replicates at start (REPLICAOF); not with a managed cluster, whose map says who replicates whom'),
  masterauth: z.string().optional().describe("password to present to the primary (its requirepass)"),
  backlog_mb: int(1, 4096).default(1).describe('MiB of recent committed writes kept for replicas to resume from after a disconnect'),
});

const metricsSchema = z.strictObject({
  enabled: z.boolean().default(false).describe('serve Prometheus metrics over HTTP'),
  addr: hostPort(0).default('127.0.0.1:9121').describe('listen address of the metrics endpoint'),
});

// ---- operator experience: dashboard, logs, backups (issue 21) ------------------------------

const dashboardSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('serve the web dashboard on the [metrics] HTTP address (only when [metrics] is enabled)'),
});

const operatorKeys = {
  dashboard: dashboardSchema.prefault({}).describe('the web dashboard'),
  log_format: z
    .enum(['auto', 'pretty', 'json'])
    .default('auto')
    .describe('auto: readable lines and a start-up banner on a terminal, JSON lines otherwise'),
  auto_vacuum: z
    .boolean()
    .default(true)
    .describe('give free pages back to the file system in the background (adaptive incremental vacuum)'),
  backup_dir: z
    .string()
    .min(1)
    .optional()
    .describe('where SAVE and BGSAVE write their backup (default: "<data_dir>.backup", beside data_dir, not inside it)'),
};

// ---- root -----------------------------------------------------------------------------------

export const configSchema = z
  .strictObject({
    addr: hostPortOrOff().default('0.0.0.0:6379').describe('Redis-protocol listen address; "" turns the plaintext port off (only with tls_addr)'),
    data_dir: z.string().min(1).default('./blob_data').describe('directory holding the SQLite shard files'),
    num_shards: int(1, 1024).default(4).describe('number of SQLite shards; fixed once data exists'),
    async_write: z.boolean().default(false).describe('acknowledge writes before they reach SQLite'),
    batch_size: int(1, 100000).default(1).describe('max writes in one savepoint group, the unit that commits or fails together'),
    batch_timeout_ms: int(0, 60000).default(0).describe('max wait to fill a write batch, in ms'),
    inflight_capacity: int(1).default(10000).describe('max writes executed but not yet committed; further writes wait for room'),
    read_cache_mb: int(0).default(64).describe('memory for recently read large values (256 KiB and up), over all shards, in MiB (0 = off)'),
    value_cache_mb: int(0).default(32).describe('memory for hot small values (up to 16 KiB), filled by reads and writes, over all shards, in MiB (0 = off)'),
    output_compression: z.boolean().default(false).describe('accepted for compatibility; has no effect'),
    storage_compression: storageCompressionSchema.prefault({}).describe('compression of blobs at rest'),
    sqlite: sqliteSchema.prefault({}).describe('SQLite tuning applied to every shard'),
    cluster: clusterSchema.prefault({}).describe('cluster membership and slot ownership'),
    replication: replicationSchema.prefault({}).describe('replication from a primary'),
    metrics: metricsSchema.prefault({}).describe('Prometheus metrics endpoint'),
    log_level: z
      .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
      .default('info')
      .describe('minimum level written to the log'),
    requirepass: z.string().optional().describe('password clients must send with AUTH'),
    protected_mode: z.boolean().default(true).describe('refuse non-loopback clients when no password is set'),
    tls_port: int(0, 65535).default(0).describe('TLS listen port on the host of addr (0 = TLS off unless tls_addr is set)'),
    tls_addr: hostPort(0).optional().describe('TLS listen address (host:port), its own bind address; turns TLS on'),
    tls_cert_file: z.string().optional().describe('PEM certificate for TLS'),
    tls_key_file: z.string().optional().describe('PEM private key for TLS'),
    tls_ca_cert_file: z.string().optional().describe('PEM CA bundle used to verify client certificates'),
    tls_auth_clients: z.boolean().default(true).describe('require TLS clients to present a certificate'),
    maxclients: int(1).default(10000).describe('max simultaneous client connections'),
    proto_max_bulk_len: int(MiB, INT32_MAX).default(512 * MiB).describe('max size of one bulk string, in bytes'),
    client_query_buffer_limit: int(MiB).default(1024 * MiB).describe('max unparsed input buffered per client, in bytes'),
    max_args: int(1, INT32_MAX).default(1024 * 1024).describe('max elements in one multibulk request'),
    client_output_buffer_limit_soft: int(1)
      .default(64 * MiB)
      .describe('pending reply bytes above which reading from a client pauses'),
    client_output_buffer_limit_hard: int(1)
      .default(256 * MiB)
      .describe('pending reply bytes above which a client is disconnected'),
    timeout: int(0).default(0).describe('idle seconds before a client is closed (0 = never)'),
    disk_reserve_mb: int(0)
      .default(16)
      .describe('room held free in data_dir for a full disk: released for checkpoints and deletes when the disk fills, writes resume once twice this is free (0 = off)'),
    umask: int(0, 0o777)
      .default(0o077)
      .describe('permission bits removed from every file and directory created (0o077: owner only), e.g. 0o027'),
    busy_reply_threshold_ms: int(1).default(5000).describe("a Lua script running longer than this lets other clients in to get -BUSY (Redis' busy-reply-threshold)"),
    ...operatorKeys,
  })
  .superRefine((c, ctx) => {
    const tlsAddr = c.tls_addr === undefined ? null : parseHostPort(c.tls_addr);
    if (tlsAddr?.ok === true && c.tls_port !== 0 && c.tls_port !== tlsAddr.port) {
      ctx.addIssue({
        code: 'custom',
        path: ['tls_port'],
        message: `tls_port ${c.tls_port} differs from the port of tls_addr ${c.tls_addr}`,
        params: { allowed: 'the TLS port in tls_addr only (or tls_port only, to listen on the host of addr)' },
      });
    }
    // With no plaintext port, TLS is the only way in: it must have an address of its own.
    if (c.addr === '' && c.tls_addr === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['addr'],
        message: 'addr = "" turns the plaintext port off, which needs TLS listening on its own address',
        params: { allowed: 'set tls_addr = "host:port" (with tls_cert_file and tls_key_file), or give addr a "host:port"' },
      });
    }
    // A soft limit above the hard one would never pause anyone: the client is dropped first.
    if (c.client_output_buffer_limit_soft > c.client_output_buffer_limit_hard) {
      ctx.addIssue({
        code: 'custom',
        path: ['client_output_buffer_limit_soft'],
        message: `soft limit ${c.client_output_buffer_limit_soft} is above the hard limit ${c.client_output_buffer_limit_hard}`,
        params: { allowed: 'client_output_buffer_limit_soft <= client_output_buffer_limit_hard' },
      });
    }
  });

export type Config = z.infer<typeof configSchema>;
