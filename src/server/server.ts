/**
 * The TCP server: accepts connections, keeps the client registry, and runs graceful shutdown.
 */
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ProtocolError } from '../protocol/parser.js';
import { commandTable } from '../commands/table.js';
import type { ClientState, ServerContext, ServerStats } from '../commands/types.js';
import type { Store } from '../storage/store.js';
import { Connection, type ConnectionLimits } from './connection.js';

export interface ServerOptions {
  host: string;
  port: number;
  version: string;
  configFile: string | null;
  limits: ConnectionLimits;
  maxClients: number;
}

type InfoSection = readonly [string, ReadonlyArray<readonly [string, string | number]>];

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
  private readonly net: NetServer;
  private readonly connections = new Map<number, Connection>();
  private nextId = 1;
  private shuttingDown: Promise<void> | null = null;
  private boundPort = 0;
  private readonly sections: (() => InfoSection)[] = [];
  /** Called once shutdown has drained everything; main decides how the process ends. */
  onShutdown: (reason: string) => void = () => {};

  constructor(
    private readonly store: Store,
    private readonly opts: ServerOptions,
    private readonly log: Logger,
  ) {
    this.net = createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  get version(): string {
    return this.opts.version;
  }

  get port(): number {
    return this.boundPort;
  }

  get configFile(): string | null {
    return this.opts.configFile;
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.net.once('error', reject);
      this.net.listen({ host: this.opts.host, port: this.opts.port }, () => {
        this.net.off('error', reject);
        const address = this.net.address();
        this.boundPort = typeof address === 'object' && address !== null ? address.port : this.opts.port;
        resolve(this.boundPort);
      });
    });
  }

  clients(): Iterable<ClientState> {
    return this.connections.values();
  }

  addInfoSection(section: () => InfoSection): void {
    this.sections.push(section);
  }

  infoSections(): InfoSection[] {
    return this.sections.map((s) => s());
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
    this.net.close();
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

  private accept(socket: Socket): void {
    this.stats.totalConnections++;
    if (this.shuttingDown !== null) {
      socket.destroy();
      return;
    }
    if (this.connections.size >= this.opts.maxClients) {
      this.stats.rejectedConnections++;
      socket.end('-ERR max number of clients reached\r\n');
      return;
    }
    const id = this.nextId++;
    const conn = new Connection(
      id,
      socket,
      this.store,
      this,
      this.opts.limits,
      (c) => this.connections.delete(c.id),
      (c, err) => this.protocolError(c, err),
    );
    this.connections.set(id, conn);
  }

  private protocolError(c: Connection, err: ProtocolError): void {
    this.stats.protocolErrors++;
    this.log.warn({ client: c.addr, id: c.id }, err.message);
  }
}
