/**
 * Runs commands without sockets: a real store in a temp directory, the keyspace API and the
 * dispatcher, with a client and server context of its own. For fast handler tests in every
 * write mode; replies are the handlers' values, or their RESP bytes through the real encoder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Dispatcher } from '../../src/commands/dispatch.js';
import { commandTable } from '../../src/commands/table.js';
import { LatencyMonitor, SlowLog } from '../../src/commands/slowlog.js';
import type { ClientState, ServerContext } from '../../src/commands/types.js';
import { ReplyEncoder, StreamedBulk, type ProtocolVersion, type Reply } from '../../src/protocol/reply.js';
import type { CompressionSettings } from '../../src/storage/codecs.js';
import { Keyspace } from '../../src/storage/keyspace.js';
import { Store } from '../../src/storage/store.js';
import { MonitorFeed } from '../../src/server/monitor.js';
import { ClientPause } from '../../src/server/pause.js';

export interface HarnessOptions {
  asyncWrite?: boolean;
  compression?: CompressionSettings | null;
  numShards?: number;
}

/** The write modes handler tests run in: every combination of sync/async and compression. */
export const WRITE_MODES: ReadonlyArray<{ name: string; opts: HarnessOptions }> = [
  { name: 'sync', opts: { asyncWrite: false } },
  { name: 'async', opts: { asyncWrite: true } },
  { name: 'sync+zstd', opts: { asyncWrite: false, compression: { algorithm: 'zstd', level: 3 } } },
  { name: 'async+gzip', opts: { asyncWrite: true, compression: { algorithm: 'gzip', level: 6 } } },
];

export class Harness {
  /** The clock every command reads; tests move it by hand. */
  now = Date.UTC(2026, 0, 1);
  readonly client: ClientState;
  private readonly dispatcher: Dispatcher;

  private constructor(
    readonly store: Store,
    private readonly dir: string,
    /** Writes that failed to commit: a handler test expects none. */
    readonly failures: Error[],
  ) {
    this.client = {
      id: 1,
      addr: '127.0.0.1:1',
      laddr: '127.0.0.1:2',
      createdAt: this.now,
      lastInteraction: this.now,
      lastCommand: 'NULL',
      name: '',
      libName: '',
      libVer: '',
      proto: 2,
      db: 0,
      authenticated: true,
      closeAfterReply: false,
      queryBufferBytes: 0,
      outputBytes: 0,
      argvBytes: 0,
      backlog: 0,
      tx: null,
      reply: 'on',
      noEvict: false,
      noTouch: false,
      monitor: false,
    };
    const client = this.client;
    const server: ServerContext = {
      version: '7.2.0',
      auth: { required: false, verify: () => false },
      startedAt: this.now,
      port: 0,
      configFile: null,
      configParameters: () => [],
      commands: commandTable,
      stats: { totalConnections: 1, totalCommands: 0, rejectedConnections: 0, protocolErrors: 0, errorReplies: 0, asyncWriteFailures: 0 },
      clients: () => [client],
      startSave: () => Promise.reject(new Error('no backups in the harness')),
      shutdown: () => {},
      infoSections: () => [],
      slowlog: new SlowLog(),
      latency: new LatencyMonitor(),
      applyConfig: () => {},
      resetStats: () => {},
      killClient: () => {},
      monitors: new MonitorFeed(() => false),
      pause: new ClientPause(),
    };
    this.dispatcher = new Dispatcher(new Keyspace(store), server, store, () => this.now);
  }

  static open(opts: HarnessOptions = {}): Harness {
    const dir = mkdtempSync(join(tmpdir(), 'blobasaur-harness-'));
    const failures: Error[] = [];
    const store = Store.open({
      dataDir: dir,
      numShards: opts.numShards ?? 4,
      asyncWrite: opts.asyncWrite ?? false,
      batchSize: 1,
      batchTimeoutMs: 0,
      inflightCapacity: 10_000,
      inflightMaxBytes: 1 << 28,
      compression: opts.compression ?? null,
      sqlite: { synchronous: 'OFF', cache_size_mb: 4, busy_timeout_ms: 1000, mmap_size_mb: 0 },
      sweepIntervalMs: 0,
      maintenanceWorker: false,
      onWriteFailure: (err) => failures.push(err),
    });
    return new Harness(store, dir, failures);
  }

  /** Runs one command and resolves with its reply value. */
  async run(...words: (string | Buffer | number)[]): Promise<Reply> {
    const args = words.map((w) => (Buffer.isBuffer(w) ? w : Buffer.from(String(w))));
    for (;;) {
      const out = this.dispatcher.dispatch(this.client, args);
      if (out.kind === 'wait') {
        await out.until;
        continue;
      }
      const reply = await out.reply;
      // A value stored in chunks streams to a socket; a handler test gets its bytes.
      if (reply instanceof StreamedBulk) {
        const parts: Buffer[] = [];
        try {
          for (let p = await reply.source.next(); p !== null; p = await reply.source.next()) parts.push(p);
        } finally {
          reply.source.release();
        }
        return Buffer.concat(parts);
      }
      return reply;
    }
  }

  /** Runs one command and resolves with its reply as RESP text (latin1), encoded as a client would get it. */
  async resp(...words: (string | Buffer | number)[]): Promise<string> {
    const reply = await this.run(...words);
    const enc = new ReplyEncoder();
    enc.write(reply, this.client.proto as ProtocolVersion);
    return Buffer.concat(enc.take()).toString('latin1');
  }

  async close(): Promise<void> {
    await this.store.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
