/**
 * The TCP (and optional TLS) server: accepts connections, decides who may stay (maxclients,
 * protected mode), keeps the client registry, closes idle clients, and runs graceful shutdown.
 */
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TlsOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { ProtocolError } from '../protocol/parser.js';
import { commandTable } from '../commands/table.js';
import type { ClientState, ConfigChange, RedisLogLevel, ServerContext, ServerStats } from '../commands/types.js';
import { LatencyMonitor, SlowLog } from '../commands/slowlog.js';
import { opsStats } from '../observability/metrics.js';
import type { Store } from '../storage/store.js';
import { Keyspace } from '../storage/keyspace.js';
import { Dispatcher } from '../commands/dispatch.js';
import { startSave } from '../tools/backup.js';
import { Connection, type ConnectionHooks, type ConnectionLimits } from './connection.js';
import { MonitorFeed } from './monitor.js';
import { ClientPause } from './pause.js';
import { DENIED_LINE, MAXCLIENTS_LINE, PasswordAuthenticator, protectedModeRefuses } from './security.js';
import { TLS_HANDSHAKE_TIMEOUT_MS } from './tls.js';

export interface ServerOptions {
  host: string;
  /** The plaintext port; null: no plaintext listener (TLS only). */
  port: number | null;
  version: string;
  configFile: string | null;
  limits: ConnectionLimits;
  maxClients: number;
  /** Clients must AUTH with this password first; null: no password. */
  requirepass?: string | null;
  /** Refuse non-loopback peers while no password is set (Redis' protected-mode). Default true. */
  protectedMode?: boolean;
  /** Close clients idle for more than this many seconds; 0 never. */
  idleTimeoutSec?: number;
  /** A second, TLS listener on this port with these options (from tls.ts); null: none. */
  tls?: { host?: string; port: number; options: TlsOptions } | null;
  /** Where SAVE and BGSAVE write (backup_dir); default beside the data directory. */
  backupDir?: string;
  /** What CONFIG GET answers: Redis parameter names and this server's values for them. */
  configParameters?: () => ReadonlyArray<readonly [string, string]>;
}

const WARN_INTERVAL_MS = 10_000;

/** A refused socket gets this long to take its error line before it is closed outright. */
const REJECT_LINGER_MS = 2000;

/** An extra INFO section: its name and the function that computes its fields when it is asked for. */
type InfoSection = readonly [string, () => ReadonlyArray<readonly [string, string | number]>];

export class BlobServer implements ServerContext {
  readonly startedAt = Date.now();
  readonly commands = commandTable;
  readonly stats: ServerStats = {
    totalConnections: 0,
    totalCommands: 0,
    rejectedConnections: 0,
    protocolErrors: 0,
    errorReplies: 0,
    asyncWriteFailures: 0,
  };
  readonly auth: PasswordAuthenticator;
  readonly slowlog = new SlowLog();
  readonly latency = new LatencyMonitor();
  /** Settings CONFIG SET may change: start as configured. */
  private maxClients: number;
  private idleTimeoutSec: number;
  /** Redis' defaults; only OBJECT ENCODING reads them (a namespace's storage does not change). */
  private hashMaxListpackEntries = 512;
  private hashMaxListpackValue = 64;
  /** Shared by every connection's parser, so a CONFIG SET of a limit applies to every client at once. */
  private readonly limits: ConnectionLimits;
  readonly monitors: MonitorFeed;
  readonly pause = new ClientPause();
  private readonly net: NetServer;
  private readonly tls: TlsServer | null = null;
  private boundTlsPort = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  /** Per kind of warning: when it was last logged and how many were left out since. */
  private readonly throttled = new Map<string, { at: number; skipped: number }>();
  private readonly hooks: ConnectionHooks;
  private readonly dispatcher: Dispatcher;
  private readonly connections = new Map<number, Connection>();
  /** TCP connections to the TLS port still handshaking, by peer address: they count as clients. */
  private readonly handshakes = new Map<string, { raw: Socket; timer: NodeJS.Timeout }>();
  private nextId = 1;
  private shuttingDown: Promise<void> | null = null;
  private boundPort = 0;
  private readonly sections: InfoSection[] = [];
  /** Called once shutdown has drained everything; main decides how the process ends. */
  onShutdown: (reason: string) => void = () => {};

  constructor(
    private readonly store: Store,
    private readonly opts: ServerOptions,
    private readonly log: Logger,
  ) {
    this.auth = new PasswordAuthenticator(opts.requirepass);
    this.maxClients = opts.maxClients;
    this.idleTimeoutSec = opts.idleTimeoutSec ?? 0;
    this.limits = { ...opts.limits };
    this.monitors = new MonitorFeed((user, password) => this.auth.verify(user, password));
    this.dispatcher = new Dispatcher(new Keyspace(store), this, store);
    this.net = createServer({ noDelay: true }, (socket) => this.accept(socket));
    if (opts.tls) {
      this.tls = createTlsServer(opts.tls.options, (socket) => {
        this.handshakeDone(socket);
        this.accept(socket);
      });
      this.tls.on('connection', (raw: Socket) => this.startHandshake(raw));
      this.tls.on('tlsClientError', (err, socket) => {
        this.log.debug({ client: `${socket.remoteAddress}:${socket.remotePort}`, err: err.message }, 'TLS handshake failed');
        // With a listener for this event, node:tls leaves the socket open (a timed-out handshake too).
        socket.destroy();
      });
    }
    this.hooks = {
      onClose: (c) => {
        this.connections.delete(c.id);
        // Its watched keys and monitor registration would otherwise outlive it.
        c.tx?.discard();
        this.monitors.remove(c);
      },
      onProtocolError: (c, err) => this.protocolError(c, err),
      onErrorReply: () => this.stats.errorReplies++,
      onOutputLimit: (c, backlog) => {
        this.warnThrottled('output', { client: c.addr, id: c.id, backlog }, 'client closed: over the output buffer hard limit and not reading');
      },
    };
  }

  get version(): string {
    return this.opts.version;
  }

  get port(): number {
    return this.boundPort;
  }

  /** The TLS listener's port, 0 when TLS is off. */
  get tlsPort(): number {
    return this.boundTlsPort;
  }

  get configFile(): string | null {
    return this.opts.configFile;
  }

  startSave(): Promise<void> {
    return startSave(this, this.store, this.opts.backupDir);
  }

  /** The configured parameters, with the current values of those CONFIG SET changes. */
  configParameters(): ReadonlyArray<readonly [string, string]> {
    const live = new Map<string, string>([
      ['maxclients', String(this.maxClients)],
      ['timeout', String(this.idleTimeoutSec)],
      ['client-query-buffer-limit', String(this.limits.maxQueryBuffer)],
      ['loglevel', redisLogLevel(this.log.level)],
      ['slowlog-log-slower-than', String(this.slowlog.slowerThan)],
      ['slowlog-max-len', String(this.slowlog.maxLen)],
      ['latency-monitor-threshold', String(this.latency.monitorThreshold)],
      // OBJECT ENCODING's limits for namespaces, under Redis' 7.0 names and their older aliases.
      ['hash-max-ziplist-entries', String(this.hashMaxListpackEntries)],
      ['hash-max-ziplist-value', String(this.hashMaxListpackValue)],
      ['hash-max-listpack-entries', String(this.hashMaxListpackEntries)],
      ['hash-max-listpack-value', String(this.hashMaxListpackValue)],
    ]);
    const out: [string, string][] = [];
    for (const [name, value] of this.opts.configParameters?.() ?? []) {
      out.push([name, live.get(name) ?? value]);
      live.delete(name);
    }
    return [...out, ...live];
  }

  applyConfig(change: ConfigChange): void {
    switch (change.name) {
      case 'maxclients':
        // As Redis: clients over the new limit stay; new ones are refused until there is room.
        this.maxClients = change.value;
        break;
      case 'timeout':
        this.idleTimeoutSec = change.value;
        this.startIdleTimer();
        break;
      case 'client-query-buffer-limit':
        this.limits.maxQueryBuffer = change.value;
        break;
      case 'hash-max-listpack-entries':
        this.hashMaxListpackEntries = change.value;
        break;
      case 'hash-max-listpack-value':
        this.hashMaxListpackValue = change.value;
        break;
      case 'requirepass':
        this.auth.setPassword(change.value);
        break;
      case 'loglevel':
        this.log.level = PINO_LEVEL[change.value];
        break;
    }
    this.log.info({ parameter: change.name }, 'CONFIG SET');
  }

  logAt(level: RedisLogLevel, message: string): void {
    this.log[PINO_LEVEL[level]]({ source: 'script' }, message);
  }

  resetStats(): void {
    this.stats.totalConnections = 0;
    this.stats.totalCommands = 0;
    this.stats.rejectedConnections = 0;
    this.stats.protocolErrors = 0;
    this.stats.errorReplies = 0;
    this.stats.asyncWriteFailures = 0;
    const ops = opsStats(this);
    // Prometheus counters are monotonic by contract: only INFO's numbers go back to zero.
    for (const s of ops.commands.values()) {
      s.calls = 0;
      s.usec = 0;
      s.failed = 0;
    }
    ops.errors.clear();
  }

  killClient(id: number, self: boolean): void {
    const c = this.connections.get(id);
    if (c === undefined) return;
    if (self) c.closeAfterReply = true;
    else c.destroy();
  }

  /** Starts the listeners; resolves with the plain port once every listener is bound. */
  async listen(): Promise<number> {
    if (this.opts.port !== null) this.boundPort = await listenOn(this.net, this.opts.host, this.opts.port);
    if (this.tls !== null && this.opts.tls) {
      try {
        this.boundTlsPort = await listenOn(this.tls, this.opts.tls.host ?? this.opts.host, this.opts.tls.port);
      } catch (err) {
        this.net.close();
        throw err;
      }
    }
    this.startIdleTimer();
    return this.boundPort;
  }

  private startIdleTimer(): void {
    if (this.idleTimer !== null) clearInterval(this.idleTimer);
    this.idleTimer = null;
    const timeout = this.idleTimeoutSec;
    if (timeout > 0 && this.shuttingDown === null) {
      // Redis checks each client about once a second; so do we, a little more often.
      this.idleTimer = setInterval(() => this.closeIdle(timeout * 1000), Math.min(500, timeout * 1000));
      this.idleTimer.unref();
    }
  }

  clients(): Iterable<ClientState> {
    return this.connections.values();
  }

  /** Fields are computed only when the section is asked for: some scan every shard. */
  addInfoSection(name: string, fields: InfoSection[1]): void {
    this.sections.push([name, fields]);
  }

  infoSections(): readonly InfoSection[] {
    return this.sections;
  }

  shutdown(reason: string): void {
    void this.close(reason);
  }

  /**
   * Graceful shutdown: stop accepting, stop reading, let every command already read finish and be
   * answered, drain every write queue, checkpoint and close the shards.
   */
  close(reason: string): Promise<void> {
    this.shuttingDown ??= this.doClose(reason);
    return this.shuttingDown;
  }

  private async doClose(reason: string): Promise<void> {
    this.log.info({ reason }, 'shutting down: draining writes');
    if (this.net.listening) this.net.close();
    if (this.tls?.listening === true) this.tls.close();
    if (this.idleTimer !== null) clearInterval(this.idleTimer);
    for (const h of this.handshakes.values()) h.raw.destroy();
    for (const c of this.connections.values()) c.stop();
    await this.store.drain();
    // Replies to writes that just committed leave before the sockets close.
    for (const c of this.connections.values()) c.endWhenIdle();
    await this.store.close();
    await new Promise((r) => setImmediate(r));
    for (const c of this.connections.values()) c.destroy();
    this.log.info('shutdown complete: all writes committed, shards checkpointed and closed');
    this.onShutdown(reason);
  }

  /**
   * A TCP connection to the TLS port: it counts toward maxclients from now on, and is destroyed if
   * its handshake has not finished TLS_HANDSHAKE_TIMEOUT_MS after it connected (node's own
   * handshakeTimeout restarts whenever a byte arrives, so a peer trickling bytes would outlive it).
   */
  private startHandshake(raw: Socket): void {
    if (this.shuttingDown !== null || this.connections.size + this.handshakes.size >= this.maxClients) {
      if (this.shuttingDown === null) this.stats.rejectedConnections++;
      this.stats.totalConnections++;
      // No plaintext error line: the peer expects a TLS handshake.
      raw.destroy();
      return;
    }
    // The TLS socket wrapping `raw` has the same peer address and port, which no other open
    // connection to this port can share: that is how handshakeDone finds this entry.
    const peer = `${raw.remoteAddress}:${raw.remotePort}`;
    const timer = setTimeout(() => {
      this.handshakes.delete(peer);
      raw.destroy();
    }, TLS_HANDSHAKE_TIMEOUT_MS);
    timer.unref();
    const entry = { raw, timer };
    this.handshakes.set(peer, entry);
    raw.once('close', () => {
      clearTimeout(timer);
      if (this.handshakes.get(peer) === entry) this.handshakes.delete(peer);
    });
  }

  private handshakeDone(socket: Socket): void {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const entry = this.handshakes.get(peer);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    this.handshakes.delete(peer);
  }

  private accept(socket: Socket): void {
    this.stats.totalConnections++;
    if (this.shuttingDown !== null) {
      socket.destroy();
      return;
    }
    if (this.connections.size + this.handshakes.size >= this.maxClients) {
      this.stats.rejectedConnections++;
      reject(socket, MAXCLIENTS_LINE);
      return;
    }
    if (protectedModeRefuses(this.opts.protectedMode ?? true, this.auth.required, socket.remoteAddress)) {
      this.stats.rejectedConnections++;
      this.warnThrottled(
        'denied',
        { client: `${socket.remoteAddress}:${socket.remotePort}` },
        'protected mode: refused a non-loopback client (set requirepass, or protected_mode = false)',
      );
      reject(socket, DENIED_LINE);
      return;
    }
    const id = this.nextId++;
    const conn = new Connection(id, socket, this.dispatcher, this.auth.required, this.limits, this.hooks, this.store);
    this.connections.set(id, conn);
  }

  private closeIdle(timeoutMs: number): void {
    const now = Date.now();
    for (const c of this.connections.values()) {
      // As Redis: silently, no reply.
      if (c.idleLongerThan(timeoutMs, now)) c.destroy();
    }
  }

  private protocolError(c: Connection, err: ProtocolError): void {
    this.stats.protocolErrors++;
    this.warnThrottled('protocol', { client: c.addr, id: c.id }, err.message);
  }

  /**
   * Warnings that any peer can cause (protocol errors, refusals) are logged at most once per
   * WARN_INTERVAL_MS each, with the number left out since, so hostile traffic cannot flood the log.
   */
  private warnThrottled(kind: string, fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    const t = this.throttled.get(kind);
    if (t !== undefined && now - t.at < WARN_INTERVAL_MS) {
      t.skipped++;
      return;
    }
    this.log.warn(t !== undefined && t.skipped > 0 ? { ...fields, similar_not_logged: t.skipped } : fields, message);
    this.throttled.set(kind, { at: now, skipped: 0 });
  }
}

/** Redis' loglevel names for pino's levels, both ways. */
const PINO_LEVEL = { debug: 'trace', verbose: 'debug', notice: 'info', warning: 'warn' } as const;

function redisLogLevel(level: string): string {
  if (level === 'trace') return 'debug';
  if (level === 'debug') return 'verbose';
  return level === 'info' ? 'notice' : 'warning';
}

function listenOn(server: NetServer, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}

/**
 * Writes Redis' one-line refusal and closes. Input is read and dropped meanwhile, so a peer that
 * already sent commands still gets the line rather than a reset; a peer that never closes its side
 * is cut off after REJECT_LINGER_MS.
 */
function reject(socket: Socket, line: string): void {
  socket.on('error', () => socket.destroy());
  socket.resume();
  socket.end(line);
  setTimeout(() => socket.destroy(), REJECT_LINGER_MS).unref();
}
