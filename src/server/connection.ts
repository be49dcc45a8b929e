/**
 * One client connection: bytes in → commands → replies out, in command order.
 *
 * Commands execute one at a time in arrival order, so every command sees the effects of the ones
 * before it. A reply that is not ready yet (a write waiting for its commit) holds a slot; later
 * replies wait behind it. Reading from the socket pauses while this client has too much in flight
 * — unsent output, unsettled replies, or commands waiting for the store to have room — so one
 * client cannot grow the server's memory without bound.
 */
import type { Socket } from 'node:net';
import { ProtocolError, RequestParser, type Args, type ParserLimits } from '../protocol/parser.js';
import { ErrorReply, NO_REPLY, ReplyEncoder, type ProtocolVersion, type Reply } from '../protocol/reply.js';
import { commandTable, run } from '../commands/table.js';
import type { ClientState, CommandContext, ServerContext } from '../commands/types.js';
import type { Store } from '../storage/store.js';

export interface ConnectionLimits extends ParserLimits {
  /** Unsent reply bytes above which the client's commands stop executing until the socket drains. */
  outputSoftLimit: number;
  /** Unsent reply bytes above which the client is disconnected. */
  outputHardLimit: number;
  /** Replies waiting for a commit above which the client's commands stop executing. */
  maxPendingReplies: number;
}

interface Slot {
  reply: Reply | undefined;
}

export class Connection implements ClientState {
  readonly createdAt = Date.now();
  lastInteraction = this.createdAt;
  lastCommand = 'NULL';
  name = '';
  libName = '';
  libVer = '';
  proto: ProtocolVersion = 2;
  db = 0;
  closeAfterReply = false;
  readonly addr: string;
  readonly laddr: string;

  private readonly parser: RequestParser;
  private readonly encoder = new ReplyEncoder();
  private readonly ctx: CommandContext;
  private inbox: Args[] = [];
  private inboxHead = 0;
  private readonly slots: Slot[] = [];
  private slotsHead = 0;
  private waitingForRoom = false;
  private waitingForDrain = false;
  private flushQueued = false;
  private closed = false;
  /** Set when no more commands will be read (protocol error, QUIT, shutdown). */
  private stopReading = false;
  /** A protocol error to answer once the commands read before it are answered. */
  private pendingError: ErrorReply | null = null;

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    store: Store,
    server: ServerContext,
    private readonly limits: ConnectionLimits,
    private readonly onClose: (c: Connection) => void,
    private readonly onProtocolError: (c: Connection, err: ProtocolError) => void,
  ) {
    this.parser = new RequestParser(limits);
    this.addr = `${socket.remoteAddress}:${socket.remotePort}`;
    this.laddr = `${socket.localAddress}:${socket.localPort}`;
    this.ctx = { store, client: this, server };
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('drain', this.onDrain);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.closed = true;
      this.onClose(this);
    });
  }

  get queryBufferBytes(): number {
    return this.parser.buffered;
  }

  get outputBytes(): number {
    return this.encoder.pending + this.socket.writableLength;
  }

  /** Replies still owed to this client. */
  get pendingReplies(): number {
    return this.slots.length - this.slotsHead;
  }

  /** Stops reading new commands; the ones already read still run and are answered. */
  stop(): void {
    this.stopReading = true;
    this.socket.pause();
  }

  /** Closes at once, replies or not. */
  destroy(): void {
    this.socket.destroy();
  }

  /** Ends the connection once every reply owed has been written. */
  endWhenIdle(): void {
    this.stop();
    this.closeAfterReply = true;
    this.maybeEnd();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.stopReading) return;
    this.lastInteraction = Date.now();
    const parsed: Args[] = this.inboxHead < this.inbox.length ? this.inbox : [];
    try {
      this.parser.push(chunk, parsed);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      // Answer everything read before the bad bytes, then the error, then close: the stream
      // can no longer be framed.
      this.stop();
      this.onProtocolError(this, err);
      this.pendingError = new ErrorReply(`ERR ${err.message}`);
    }
    if (parsed !== this.inbox) {
      this.inbox = parsed;
      this.inboxHead = 0;
    }
    this.pump();
  };

  private readonly onDrain = (): void => {
    if (!this.waitingForDrain) return;
    this.waitingForDrain = false;
    this.pump();
  };

  /** Executes queued commands until the inbox is empty or something asks to wait. */
  private pump(): void {
    while (this.inboxHead < this.inbox.length && !this.closed && !this.closeAfterReply) {
      if (this.waitingForRoom || this.waitingForDrain) break;
      if (this.pendingReplies >= this.limits.maxPendingReplies) break;
      if (this.outputBytes > this.limits.outputSoftLimit) {
        this.flushOutput();
        if (this.socket.writableLength > this.limits.outputSoftLimit) {
          this.waitingForDrain = true;
          break;
        }
      }
      const args = this.inbox[this.inboxHead];
      const spec = commandTable.resolve(args);
      if (spec instanceof ErrorReply) {
        this.inboxHead++;
        this.deliver(spec);
        continue;
      }
      if (spec.flags.includes('write') && !this.ctx.store.hasRoom) {
        // The overlay is full: this write (and everything after it) waits for commits.
        this.waitingForRoom = true;
        void this.ctx.store.waitForRoom().then(() => {
          this.waitingForRoom = false;
          this.pump();
        });
        break;
      }
      this.inboxHead++;
      this.lastCommand = spec.name;
      this.ctx.server.stats.totalCommands++;
      this.deliver(run(spec, this.ctx, args));
    }
    if (this.inboxHead >= this.inbox.length) {
      this.inbox = [];
      this.inboxHead = 0;
      if (this.pendingError !== null && !this.closeAfterReply) {
        this.deliver(this.pendingError);
        this.pendingError = null;
        this.closeAfterReply = true;
      } else if (!this.stopReading && this.socket.isPaused()) {
        this.socket.resume();
      }
    } else if (!this.socket.isPaused()) {
      this.socket.pause();
    }
    this.flushOutput();
    this.maybeEnd();
  }

  private deliver(result: Reply | Promise<Reply>): void {
    if (!(result instanceof Promise)) {
      if (this.pendingReplies === 0) this.encode(result);
      else this.slots.push({ reply: result });
      return;
    }
    const slot: Slot = { reply: undefined };
    this.slots.push(slot);
    void result.then((reply) => {
      slot.reply = reply;
      this.settleSlots();
    });
  }

  private settleSlots(): void {
    const wasFull = this.pendingReplies >= this.limits.maxPendingReplies;
    while (this.slotsHead < this.slots.length && this.slots[this.slotsHead].reply !== undefined) {
      this.encode(this.slots[this.slotsHead].reply!);
      this.slotsHead++;
    }
    if (this.slotsHead === this.slots.length) {
      this.slots.length = 0;
      this.slotsHead = 0;
    }
    if (wasFull && this.inboxHead < this.inbox.length) this.pump();
    this.queueFlush();
  }

  private encode(reply: Reply): void {
    if (reply === NO_REPLY) return;
    if (reply instanceof ErrorReply) this.ctx.server.stats.errorReplies++;
    this.encoder.write(reply, this.proto);
  }

  /** Replies settled by one commit leave in one corked write. */
  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    process.nextTick(() => {
      this.flushQueued = false;
      this.flushOutput();
      this.maybeEnd();
    });
  }

  private flushOutput(): void {
    if (this.encoder.pending === 0 || this.closed) return;
    const chunks = this.encoder.take();
    if (chunks.length === 1) {
      this.socket.write(chunks[0]);
    } else {
      this.socket.cork();
      for (const c of chunks) this.socket.write(c);
      this.socket.uncork();
    }
    if (this.socket.writableLength > this.limits.outputHardLimit) {
      // The client reads its replies far slower than it sends commands: Redis' hard limit.
      this.socket.destroy();
    }
  }

  private maybeEnd(): void {
    if (!this.closeAfterReply || this.closed || this.pendingReplies > 0) return;
    this.flushOutput();
    this.socket.end();
  }
}
