/**
 * One client connection: bytes in → commands → replies out, in command order.
 *
 * Commands execute one at a time in arrival order, so every command sees the effects of the ones
 * before it. A reply that is not ready yet (a write waiting for its commit) holds a slot; later
 * replies wait behind it. Reading from the socket pauses while this client has too much in flight
 * — unsent output, unsettled replies, or commands waiting for the store to have room — so one
 * client cannot grow the server's memory without bound.
 *
 * Output limits: while the client's backlog (encoded but unsent replies, plus finished replies
 * parked behind an unfinished one) is over the soft limit, its commands stop executing and its
 * socket stops being read, so the backlog stays under soft + one reply. Replies computed off the
 * event loop (decompressed reads, at most maxPendingReads of them) can still land after the pause;
 * when one takes a backlog already over the soft limit past the hard limit, and the client then
 * reads nothing for OUTPUT_GRACE_MS, it is disconnected. A client that keeps reading is never cut
 * off, and a single reply larger than the hard limit is still delivered.
 *
 * Streamed writes: the value of a SET or HSET larger than CHUNK_THRESHOLD goes to the chunk file
 * while it arrives (storage/blob-stager.ts); reading pauses while more than STAGE_AHEAD_BYTES of it
 * wait to be written, and the command runs once every chunk is. The staged values of a command are
 * let go of when it has run (the keyspace took those it stored), or, for a command queued in MULTI,
 * when the transaction ends; all of them when the client goes.
 */
import type { Socket } from 'node:net';
import { ProtocolError, RequestParser, type Args, type BulkSink, type ParserLimits } from '../protocol/parser.js';
import { bulkHeader, ErrorReply, NO_REPLY, PinnedBulk, ReplyEncoder, StreamedArray, StreamedBulk, type ProtocolVersion, type Reply } from '../protocol/reply.js';
import type { Dispatcher } from '../commands/dispatch.js';
import type { ClientState, ReplyMode } from '../commands/types.js';
import type { Transaction } from '../commands/transactions.js';
import { stagedValueKey } from '../commands/staged-values.js';
import { STAGE_AHEAD_BYTES, StagedBlob, stagedBlobOf, type StagingHost } from '../storage/blob-stager.js';
import { CHUNK_THRESHOLD } from '../storage/chunks.js';

export interface ConnectionLimits extends ParserLimits {
  /** Backlog bytes above which the client's commands stop executing and its socket stops being read. */
  outputSoftLimit: number;
  /** Backlog bytes above which a client already over the soft limit is disconnected. */
  outputHardLimit: number;
  /** Replies waiting for a commit above which the client's commands stop executing. */
  maxPendingReplies: number;
  /**
   * Replies of non-write commands still being computed off the event loop (decompression) above
   * which the client's commands stop executing: their sizes are unknown until they finish.
   */
  maxPendingReads: number;
}

export interface ConnectionHooks {
  onClose(c: Connection): void;
  onProtocolError(c: Connection, err: ProtocolError): void;
  /** An error reply is being sent (INFO's total_error_replies). */
  onErrorReply(): void;
  /** The client went over the hard output limit and is being disconnected. */
  onOutputLimit(c: Connection, backlog: number): void;
}

/**
 * Before AUTH, Redis 7 refuses multibulks of more than 10 elements and bulks over 16 KiB, so an
 * unauthenticated peer cannot make the server buffer much. Our parser reads ahead, so the check
 * runs once the commands already read have run (an AUTH among them counts first).
 */
const UNAUTH_MAX_ARGS = 10;
const UNAUTH_MAX_BULK = 16 * 1024;
/**
 * Unsent output an unauthenticated client may hold: tiny pipelined commands each earn a -NOAUTH
 * reply several times their size, so a client that never reads would otherwise be held to the
 * (much larger) output limits. Past this it is disconnected, as Redis disconnects clients over
 * their output limit. It is what the docs promise for input: one socket read plus 10 × 16 KiB.
 */
export const UNAUTH_MAX_OUTPUT = 64 * 1024 + UNAUTH_MAX_ARGS * UNAUTH_MAX_BULK;

/** How long an ended connection waits for the peer to close its side before it is destroyed. */
const CLOSE_LINGER_MS = 2000;

const CRLF = Buffer.from('\r\n');
/** Bytes of a streamed reply the socket may hold before the stream waits for 'drain'. */
const STREAM_AHEAD_BYTES = 1024 * 1024;

/** How long a client over the hard output limit has to read something before it is disconnected. */
export const OUTPUT_GRACE_MS = 500;

interface Slot {
  reply: Reply | undefined;
  /** Bytes the reply holds while it waits for the slots before it. */
  size: number;
}

/** The staged values among a command's arguments, or null (the usual case). */
function stagedIn(args: readonly Buffer[]): StagedBlob[] | null {
  let out: StagedBlob[] | null = null;
  for (const a of args) {
    if (a.length !== 0) continue;
    const b = stagedBlobOf(a);
    if (b !== undefined) (out ??= []).push(b);
  }
  return out;
}

/** Lets go of what a reply that will not be sent holds (a streamed value's blob, a lent bulk's memory). */
function dropUnsent(reply: Reply): void {
  if (reply instanceof StreamedBulk) reply.source.release();
  else if (reply instanceof PinnedBulk) reply.release();
}

/** Approximate bytes a reply holds in memory (its payloads; small framing ignored). */
function replySize(reply: Reply): number {
  if (reply instanceof Buffer) return reply.length;
  // Not in memory, but owed: counted so that a client that does not read stops being served.
  if (reply instanceof StreamedBulk) return reply.source.length;
  if (reply instanceof PinnedBulk) return reply.length;
  if (typeof reply === 'string') return reply.length;
  if (Array.isArray(reply)) {
    let n = 0;
    for (const item of reply as readonly Reply[]) n += item instanceof Buffer ? item.length : 16;
    return n;
  }
  return 16;
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
  authenticated: boolean;
  closeAfterReply = false;
  tx: Transaction | null = null;
  reply: ReplyMode = 'on';
  noEvict = false;
  noTouch = false;
  monitor = false;
  readonly addr: string;
  readonly laddr: string;

  private readonly parser: RequestParser;
  private readonly encoder = new ReplyEncoder();
  private inbox: Args[] = [];
  private inboxHead = 0;
  private readonly slots: Slot[] = [];
  private slotsHead = 0;
  /** Bytes of finished replies parked in slots behind an unfinished one. */
  private heldBytes = 0;
  /** Non-write commands whose replies are still being computed. */
  private pendingReads = 0;
  private waitingForRoom = false;
  /** Commands stopped because the backlog is over the soft limit; resumed on drain or settle. */
  private blockedOnOutput = false;
  private flushQueued = false;
  private closed = false;
  /** Set once the socket has been ended (QUIT, protocol error, shutdown). */
  private ending = false;
  /** Set when no more commands will be read (protocol error, QUIT, shutdown). */
  private stopReading = false;
  /** Set while this client's command runs: push() then holds what it sends in `pushed`. */
  private dispatching = false;
  /** What push() sent while this client's command ran, to follow its reply (null: nothing). */
  private pushed: Reply[] | null = null;
  /** A protocol error to answer once the commands read before it are answered. */
  private pendingError: ErrorReply | null = null;
  /** socket.writableLength at the last idle check, to notice a client reading its replies. */
  private lastWritable = 0;
  /** Bytes handed to the socket; minus its writableLength, what reached the kernel (grows only while the client reads). */
  private writtenBytes = 0;
  /** Set while a client over the hard output limit is being given OUTPUT_GRACE_MS to read. */
  private limitTimer: NodeJS.Timeout | null = null;
  /** Set while an ended connection waits for its peer to close. */
  private lingerTimer: NodeJS.Timeout | null = null;
  /** Set while a StreamedBulk is being written: later replies wait in slots behind it. */
  private streaming = false;
  /** Bytes of the streamed bulk not yet handed to the socket: part of the backlog the client owes. */
  private streamOwed = 0;
  /** Staged values whose chunks are still being written (their unwritten bytes pause reading). */
  private readonly uploads = new Set<StagedBlob>();
  /** Set while reading is paused for the chunk writes of staged values to catch up. */
  private stagePaused = false;
  /** Set while the next command waits for its staged values' last chunks. */
  private waitingForStage = false;
  /** Staged values of commands queued in MULTI: let go of when the transaction ends. */
  private readonly stagedInTx: StagedBlob[] = [];

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    private readonly dispatcher: Dispatcher,
    authRequired: boolean,
    private readonly limits: ConnectionLimits,
    private readonly hooks: ConnectionHooks,
    private readonly staging: StagingHost | null = null,
  ) {
    this.parser = new RequestParser(limits, staging === null ? undefined : { minLength: CHUNK_THRESHOLD + 1, open: this.openStaged }, staging?.valueBuffers);
    this.addr = `${socket.remoteAddress}:${socket.remotePort}`;
    this.laddr = `${socket.localAddress}:${socket.localPort}`;
    this.authenticated = !authRequired;
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('drain', this.onDrain);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.markClosed();
      this.hooks.onClose(this);
    });
  }

  get queryBufferBytes(): number {
    return this.parser.buffered;
  }

  get outputBytes(): number {
    return this.encoder.pending + this.socket.writableLength;
  }

  /** Bytes of commands read and not yet run (CLIENT LIST argv-mem). */
  get argvBytes(): number {
    let n = 0;
    for (let i = this.inboxHead; i < this.inbox.length; i++) for (const a of this.inbox[i]) n += a.length;
    return n;
  }

  /** Output the client owes us reading: unsent bytes plus finished replies parked in slots. */
  /** A command waits to be dispatched again (CLIENT PAUSE, write room): CLIENT LIST's b flag. */
  get blocked(): boolean {
    return this.waitingForRoom;
  }

  get backlog(): number {
    return this.outputBytes + this.heldBytes + this.streamOwed;
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
    this.markClosed();
    this.socket.destroy();
  }

  /** Ends the connection once every reply owed has been written. */
  endWhenIdle(): void {
    this.stop();
    this.closeAfterReply = true;
    this.maybeEnd();
  }

  /**
   * Whether the client has been idle for more than `timeoutMs`: it sent nothing and read none of
   * its replies for that long. A client waiting on its own commands (a commit) is not idle.
   */
  idleLongerThan(timeoutMs: number, now: number): boolean {
    const writable = this.socket.writableLength;
    if (writable < this.lastWritable) this.lastInteraction = now;
    this.lastWritable = writable;
    if (this.pendingReplies > 0 || this.waitingForRoom || this.pendingReads > 0 || this.uploads.size > 0) return false;
    return now - this.lastInteraction > timeoutMs;
  }

  private markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    // Nothing more will run or be sent: let go of what this client was holding.
    for (let i = this.inboxHead; i < this.inbox.length; i++) this.dropStaged(stagedIn(this.inbox[i]));
    this.dropStaged(stagedIn(this.parser.abandon()));
    this.dropStaged(this.stagedInTx.splice(0));
    this.inbox = [];
    this.inboxHead = 0;
    this.encoder.take();
    this.encoder.takeRelease()?.();
    for (let i = this.slotsHead; i < this.slots.length; i++) {
      const r = this.slots[i].reply;
      if (r !== undefined) dropUnsent(r);
    }
    if (this.limitTimer !== null) clearTimeout(this.limitTimer);
    if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
    this.limitTimer = null;
    this.lingerTimer = null;
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.stopReading) return;
    this.lastInteraction = Date.now();
    const parsed: Args[] = this.inboxHead < this.inbox.length ? this.inbox : [];
    try {
      this.parser.push(chunk, parsed);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.failProtocol(err);
    }
    if (parsed !== this.inbox) {
      this.inbox = parsed;
      this.inboxHead = 0;
    }
    if (this.uploads.size > 0 && this.stagingBacklog() >= STAGE_AHEAD_BYTES) {
      this.stagePaused = true;
      this.socket.pause();
    }
    this.pump();
    if (!this.authenticated && !this.stopReading && this.inboxHead >= this.inbox.length) this.checkUnauthenticated();
  };

  /**
   * Answer everything read before the bad bytes, then the error, then close: the stream can no
   * longer be framed.
   */
  private failProtocol(err: ProtocolError): void {
    this.stop();
    this.dropStaged(stagedIn(this.parser.abandon()));
    this.hooks.onProtocolError(this, err);
    this.pendingError = new ErrorReply(`ERR ${err.message}`);
  }

  /** Redis' limits on what an unauthenticated client may send, with its error texts. */
  private checkUnauthenticated(): void {
    const declared = this.parser.pendingArgs;
    if (declared === 0) return;
    let error: ProtocolError | null = null;
    if (declared > UNAUTH_MAX_ARGS) error = new ProtocolError('unauthenticated multibulk length');
    else if (this.parser.pendingBulkLen > UNAUTH_MAX_BULK) error = new ProtocolError('unauthenticated bulk length');
    if (error === null) return;
    this.failProtocol(error);
    this.pump();
  }

  /**
   * A complete command read before AUTH ran that Redis would have refused while reading it: it and
   * everything after it are dropped, and the protocol error is answered after the replies before it.
   */
  private oversizedBeforeAuth(args: Args): boolean {
    let error: ProtocolError | null = null;
    if (args.length > UNAUTH_MAX_ARGS) error = new ProtocolError('unauthenticated multibulk length');
    else if (args.some((a) => a.length > UNAUTH_MAX_BULK)) error = new ProtocolError('unauthenticated bulk length');
    if (error === null) return false;
    this.inbox.length = this.inboxHead;
    // It comes before any parse error found further on in the same read, so it is the one answered.
    if (this.pendingError === null) this.failProtocol(error);
    else this.pendingError = new ErrorReply(`ERR ${error.message}`);
    return true;
  }

  /** The parser met the header of a large bulk: a staged value when it is one a command can take. */
  private readonly openStaged = (args: readonly Buffer[], length: number): BulkSink | null => {
    if (this.staging === null || !this.authenticated || this.closed || this.stopReading) return null;
    const key = stagedValueKey(args);
    if (key === null) return null;
    let blob: StagedBlob;
    try {
      blob = new StagedBlob(this.staging, key, length);
    } catch {
      // A full disk or a chunk file that cannot be written: the value is read into memory, and
      // the command meets the same refusal as any write.
      return null;
    }
    blob.onDrain = this.onStageDrain;
    this.uploads.add(blob);
    void blob.whenSettled().then(() => {
      this.uploads.delete(blob);
      this.onStageDrain();
    });
    return blob;
  };

  /** Unwritten bytes of the staged values being received. */
  private stagingBacklog(): number {
    let n = 0;
    for (const b of this.uploads) n += b.pendingBytes;
    return n;
  }

  private readonly onStageDrain = (): void => {
    if (!this.stagePaused || this.stagingBacklog() >= STAGE_AHEAD_BYTES) return;
    this.stagePaused = false;
    if (!this.closed) this.pump();
  };

  private dropStaged(staged: readonly StagedBlob[] | null): void {
    if (staged !== null) for (const b of staged) b.dispose();
  }

  /** After a command ran: its staged values are let go of, unless it was queued in MULTI. */
  private afterStaged(staged: StagedBlob[] | null): void {
    if (this.tx?.inMulti === true) {
      if (staged !== null) this.stagedInTx.push(...staged);
      return;
    }
    this.dropStaged(staged);
    if (this.stagedInTx.length > 0) this.dropStaged(this.stagedInTx.splice(0));
  }

  private readonly onDrain = (): void => {
    this.lastInteraction = Date.now();
    if (this.blockedOnOutput) this.pump();
  };

  /** Executes queued commands until the inbox is empty or something asks to wait. */
  private pump(): void {
    this.blockedOnOutput = false;
    while (this.inboxHead < this.inbox.length && !this.closed && !this.closeAfterReply) {
      if (this.waitingForRoom || this.waitingForStage) break;
      if (this.pendingReplies >= this.limits.maxPendingReplies) break;
      if (this.pendingReads >= this.limits.maxPendingReads) break;
      if (this.backlog > this.limits.outputSoftLimit) {
        this.flushOutput();
        // Resumed by 'drain' once the socket's buffer empties, or by settleSlots when parked
        // replies move out. Below the socket's own high-water mark no 'drain' comes, so a backlog
        // that small does not block.
        if (this.backlog > this.limits.outputSoftLimit && (this.socket.writableNeedDrain || this.heldBytes > 0)) {
          this.blockedOnOutput = true;
          break;
        }
      }
      const args = this.inbox[this.inboxHead];
      if (!this.authenticated && this.oversizedBeforeAuth(args)) break;
      const staged = stagedIn(args);
      if (staged !== null) {
        const writing = staged.find((b) => !b.settled);
        if (writing !== undefined) {
          this.waitingForStage = true;
          void writing.whenSettled().then(() => {
            this.waitingForStage = false;
            this.pump();
          });
          break;
        }
        const failed = staged.find((b) => b.error !== null);
        if (failed !== undefined) {
          this.inboxHead++;
          this.afterStaged(staged);
          this.answer(new ErrorReply(`ERR ${failed.error!.message}`), false);
          continue;
        }
      }
      this.dispatching = true;
      const outcome = this.dispatcher.dispatch(this, args);
      this.dispatching = false;
      const pushed = this.pushed;
      this.pushed = null;
      if (outcome.kind === 'wait') {
        // This write (and everything after it) waits for commits; then it is dispatched again.
        this.waitingForRoom = true;
        void outcome.until.then(() => {
          this.waitingForRoom = false;
          this.pump();
        });
        break;
      }
      this.inboxHead++;
      if (staged !== null || this.stagedInTx.length > 0) this.afterStaged(staged);
      this.answer(outcome.reply, outcome.kind === 'ran' && !outcome.write);
      if (pushed !== null) for (const reply of pushed) this.deliver(reply, false);
    }
    if (this.closed) return;
    if (this.inboxHead >= this.inbox.length) {
      this.inbox = [];
      this.inboxHead = 0;
      if (this.pendingError !== null && !this.closeAfterReply) {
        this.deliver(this.pendingError, false);
        this.pendingError = null;
        this.closeAfterReply = true;
      } else if (!this.stopReading && !this.stagePaused && this.socket.isPaused()) {
        this.socket.resume();
      }
    } else if (!this.socket.isPaused()) {
      this.socket.pause();
    }
    this.flushOutput();
    this.maybeEnd();
  }

  /** A command's reply, unless CLIENT REPLY OFF or SKIP drops it. */
  private answer(result: Reply | Promise<Reply>, isRead: boolean): void {
    const mode = this.reply;
    if (mode === 'on') this.deliver(result, isRead);
    else if (!(result instanceof Promise)) dropUnsent(result);
    if (mode === 'on') return;
    if (mode === 'skip') this.reply = 'on';
    // CLIENT REPLY SKIP itself answers nothing; the command after it is the one skipped.
    else if (mode === 'skip-next') this.reply = 'skip';
  }

  /** A reply outside the request/reply order (MONITOR's feed), after the replies already owed. */
  push(reply: Reply): void {
    if (this.closed) return;
    // A monitor's own command is shown after its reply, as Redis feeds monitors once a command has run.
    if (this.dispatching) {
      (this.pushed ??= []).push(reply);
      return;
    }
    this.deliver(reply, false);
    this.queueFlush();
  }

  private deliver(result: Reply | Promise<Reply>, isRead: boolean): void {
    if (!(result instanceof Promise)) {
      if (this.pendingReplies === 0 && !this.streaming) {
        this.encode(result);
      } else {
        const size = replySize(result);
        this.heldBytes += size;
        this.slots.push({ reply: result, size });
      }
      return;
    }
    const slot: Slot = { reply: undefined, size: 0 };
    this.slots.push(slot);
    if (isRead) this.pendingReads++;
    void result.then((reply) => {
      if (isRead) this.pendingReads--;
      slot.reply = reply;
      slot.size = replySize(reply);
      this.heldBytes += slot.size;
      this.settleSlots();
    });
  }

  private settleSlots(): void {
    if (this.closed) return;
    while (!this.streaming && this.slotsHead < this.slots.length && this.slots[this.slotsHead].reply !== undefined) {
      const slot = this.slots[this.slotsHead];
      this.heldBytes -= slot.size;
      this.encode(slot.reply!);
      this.slotsHead++;
      if (this.closed) return;
    }
    if (this.slotsHead === this.slots.length) {
      this.slots.length = 0;
      this.slotsHead = 0;
    }
    // Whatever stopped the pump (too many pending replies or reads, a parked backlog) may be gone.
    if (this.inboxHead < this.inbox.length) this.pump();
    this.queueFlush();
  }

  private encode(reply: Reply): void {
    if (reply instanceof StreamedBulk) {
      if (this.closed) reply.source.release();
      else void this.stream(reply);
      return;
    }
    if (reply === NO_REPLY) return;
    if (this.closed) {
      dropUnsent(reply);
      return;
    }
    if (reply instanceof ErrorReply) this.hooks.onErrorReply();
    const before = this.backlog;
    this.encoder.write(reply, this.proto);
    if (!this.authenticated && this.backlog > UNAUTH_MAX_OUTPUT) {
      this.hooks.onOutputLimit(this, this.backlog);
      this.destroy();
      return;
    }
    // Already over the soft limit, and this reply takes it past the hard one.
    if (before > this.limits.outputSoftLimit && this.backlog > this.limits.outputHardLimit) this.watchOutputLimit();
  }

  /**
   * Writes a streamed bulk (a value stored in chunks) after everything encoded before it: the
   * header, then one piece at a time, each only once the socket has drained the one before, so
   * the server holds about one chunk per streaming client. Replies after it wait in their slots.
   * A failure before the first byte is an error reply; after it, the reply can no longer be
   * framed and the connection is closed.
   */
  private async stream(reply: StreamedBulk): Promise<void> {
    const src = reply.source;
    // A StreamedArray's pieces carry their own framing.
    const framed = !(reply instanceof StreamedArray);
    this.streaming = true;
    let started = false;
    try {
      const first = await src.next();
      if (this.closed) return;
      this.flushOutput();
      this.streamOwed = src.length;
      if (framed) {
        const header = bulkHeader(src.length);
        this.writtenBytes += header.length;
        this.socket.write(header);
      }
      started = true;
      for (let piece = first; piece !== null; piece = await src.next()) {
        if (this.closed) return;
        const n = piece.length;
        if (framed) this.streamOwed -= n;
        this.writtenBytes += n;
        this.socket.write(piece);
        // Up to STREAM_AHEAD_BYTES in the socket's buffer: the next chunk is read while the
        // kernel sends the last one, and a streaming client costs the server about that much.
        if (this.socket.writableLength >= STREAM_AHEAD_BYTES) {
          // The output limits apply to what is owed: a client that stops reading is cut off
          // after OUTPUT_GRACE_MS over the hard limit, as for ordinary replies.
          if (this.backlog > this.limits.outputHardLimit) this.watchOutputLimit();
          await this.drained();
        }
        if (this.closed) return;
      }
      if (framed) {
        this.writtenBytes += CRLF.length;
        this.socket.write(CRLF);
      }
    } catch (err) {
      if (started || this.closed) {
        this.destroy();
        return;
      }
      this.streaming = false;
      this.encode(new ErrorReply(`ERR ${err instanceof Error ? err.message : String(err)}`));
    } finally {
      src.release();
      this.streaming = false;
      this.streamOwed = 0;
      if (!this.closed) {
        this.lastInteraction = Date.now();
        this.settleSlots();
        this.maybeEnd();
      }
    }
  }

  /** Resolves when the socket has drained (or closed). */
  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** Disconnects the client if it stays over the hard limit without reading for OUTPUT_GRACE_MS. */
  private watchOutputLimit(): void {
    if (this.limitTimer !== null || this.closed) return;
    const flushedAtStart = this.flushedBytes;
    this.limitTimer = setTimeout(() => {
      this.limitTimer = null;
      if (this.closed || this.backlog <= this.limits.outputHardLimit) return;
      if (this.flushedBytes === flushedAtStart) {
        this.hooks.onOutputLimit(this, this.backlog);
        this.destroy();
      } else {
        this.watchOutputLimit();
      }
    }, OUTPUT_GRACE_MS);
    this.limitTimer.unref();
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

  /** Bytes the socket has handed to the kernel. */
  private get flushedBytes(): number {
    return this.writtenBytes - this.socket.writableLength;
  }

  private flushOutput(): void {
    if (this.encoder.pending === 0 || this.closed) return;
    this.writtenBytes += this.encoder.pending;
    const chunks = this.encoder.take();
    // Lent bulks are given back once the socket has taken the last write (or failed it: the
    // callback runs either way), as writes complete in order.
    const done = this.encoder.takeRelease() ?? undefined;
    if (chunks.length === 1) {
      this.socket.write(chunks[0], done);
    } else {
      this.socket.cork();
      const last = chunks.length - 1;
      for (let i = 0; i < last; i++) this.socket.write(chunks[i]);
      this.socket.write(chunks[last], done);
      this.socket.uncork();
    }
  }

  private maybeEnd(): void {
    if (!this.closeAfterReply || this.closed || this.ending || this.pendingReplies > 0 || this.streaming) return;
    this.ending = true;
    this.stopReading = true;
    this.flushOutput();
    this.socket.end();
    // Read and drop whatever the peer still sends, so that its FIN (or reset) is seen and the socket
    // closes: a paused socket would never notice the peer leaving. A peer that keeps its side open is
    // cut off after a short linger.
    this.socket.resume();
    this.lingerTimer = setTimeout(() => this.socket.destroy(), CLOSE_LINGER_MS);
    this.lingerTimer.unref();
  }
}
