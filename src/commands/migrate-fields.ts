/**
 * MIGRATE in a cluster with `namespace_routing = "field"`. There a slot holds plain keys and the
 * fields of any namespace whose field name hashes to it (CLUSTER GETKEYSINSLOT lists those names),
 * so MIGRATE moves, for each name, what the slot holds under it: the plain blob (`SET`) and that
 * field of every namespace that has it (`HSETEX ns FIELDS 1 field value`), each after `ASKING`
 * on the target, with its expiry (`PXAT`). A namespace never moves whole: its other fields belong
 * to other slots (RESTORE … REPLACE would wipe them on the target).
 *
 * As in namespace mode, other clients keep writing meanwhile: a namespace or key written while
 * its copy was on the way is checked again, resent (or deleted on the target) and deleted here
 * only when what is here is what the target acknowledged, in the same turn as that check.
 */
import { ErrorReply, OK, SimpleString, type Reply } from '../protocol/reply.js';
import { RespClient, RespClientError, RespError, type RespValue } from '../protocol/client.js';
import { joinAcks, type Ack, type Keyspace } from '../storage/keyspace.js';
import { collectTargetReplies, targetError, type MigrateRequest } from './migrate-target.js';

/** Field pairs one MIGRATE moves at most; GETKEYSINSLOT lists a name again while it has more. */
const MAX_UNITS = 1000;
/** How many times a unit written while its copy was on the way is sent again. */
const RESEND_ROUNDS = 8;

/** One thing to move: a plain blob (ns null) or one field of one namespace. */
interface Unit {
  ns: Buffer | null;
  key: Buffer;
  /** What the target was last sent (null: deleted there), and its expiry. */
  sent: Buffer | null;
  expiresAt: number | null;
}

/** What Redis' MIGRATE answers when the target's RESTORE finds the key there (no REPLACE). */
const BUSYKEY = new ErrorReply('ERR Target instance replied with error: BUSYKEY Target key name already exists.');

function watchId(u: Unit): string {
  return (u.ns ?? u.key).toString('latin1');
}

/** The commands that make the target hold `value` for the unit (after ASKING), or delete it. */
function writeCommand(u: Unit, value: Buffer | null, expiresAt: number | null, replace: boolean): (string | Buffer)[] {
  if (value === null) return u.ns === null ? ['DEL', u.key] : ['HDEL', u.ns, u.key];
  const ttl = expiresAt === null ? [] : ['PXAT', String(expiresAt)];
  if (u.ns === null) return ['SET', u.key, value, ...ttl, ...(replace ? [] : ['NX'])];
  return ['HSETEX', u.ns, ...(replace ? [] : ['FNX']), ...ttl, 'FIELDS', '1', u.key, value];
}

/** ASKING before each write: its +OK needs no look, and a broken connection shows in the write's reply. */
function asking(c: RespClient): void {
  c.send(['ASKING']).catch(() => {});
}

/** A write refused only because the unit already exists on the target (no REPLACE). */
function busy(reply: RespValue): boolean {
  return reply === null || reply === 0;
}

export async function migrateFields(ks: Keyspace, req: MigrateRequest, now: number): Promise<Reply> {
  const units: Unit[] = [];
  const values: (Buffer | Promise<Buffer>)[] = [];
  const add = (ns: Buffer | null, key: Buffer): void => {
    const found = ks.lookup(ns, key, now);
    if (found === null) return;
    units.push({ ns, key, sent: null, expiresAt: found.expiresAt });
    values.push(found.value);
  };
  for (const name of req.keys) {
    if (units.length >= MAX_UNITS) break;
    add(null, name);
    for (const ns of ks.fieldNamespaces(name, MAX_UNITS - units.length, now)) add(ns, name);
  }
  if (units.length === 0) return new SimpleString('NOKEY');
  // Watched from the same turn as the reads above (nothing has awaited yet).
  const touched = new Set<string>();
  const watchers = new Map<string, { keyTouched(): void }>();
  if (!req.copy) {
    for (const u of units) {
      const id = watchId(u);
      if (watchers.has(id)) continue;
      const w = { keyTouched: () => touched.add(id) };
      watchers.set(id, w);
      ks.watch(Buffer.from(id, 'latin1'), w);
    }
  }
  const unwatch = (): void => {
    for (const [id, w] of watchers) ks.unwatch(Buffer.from(id, 'latin1'), w);
    watchers.clear();
  };
  let client: RespClient | null = null;
  try {
    try {
      client = await RespClient.connect({ host: req.host, port: req.port, timeoutMs: req.timeoutMs, maxReplyBytes: 1024 });
    } catch {
      return new ErrorReply('IOERR error or timeout connecting to the client');
    }
    const c = client;
    const auth = req.password === null ? null : c.send(req.username === null ? ['AUTH', req.password] : ['AUTH', req.username, req.password]);
    const select = c.send(['SELECT', req.db.toString()]);
    const sent: { item: Unit; reply: Promise<RespValue> }[] = [];
    for (let i = 0; i < units.length; i++) {
      const u = units[i];
      if (u.expiresAt !== null && u.expiresAt <= Date.now()) continue;
      u.sent = await values[i];
      asking(c);
      sent.push({ item: u, reply: c.send(writeCommand(u, u.sent, u.expiresAt, req.replace)) });
    }
    const replies = await collectTargetReplies(auth, select, sent, req.copy, (reply) => (busy(reply) ? BUSYKEY : null));
    let error = replies.error;
    const { refused, acked } = replies;
    if (refused || acked.length === 0) return error ?? OK;
    for (let round = 0; round < RESEND_ROUNDS && touched.size > 0 && error === null; round++) {
      const resend = acked.filter((u) => touched.has(watchId(u)));
      touched.clear();
      const replies: Promise<RespValue>[] = [];
      for (const u of resend) {
        const found = ks.lookup(u.ns, u.key, Date.now());
        const value = found === null ? null : await found.value;
        u.sent = value;
        u.expiresAt = found?.expiresAt ?? null;
        asking(c);
        replies.push(c.send(writeCommand(u, value, u.expiresAt, true)));
      }
      for (const r of replies) {
        const reply = await r;
        if (reply instanceof RespError) error ??= targetError(reply);
      }
    }
    // From these checks to the deletes nothing awaits: no write can slip in between. A touched
    // namespace may have been written in another field only: what counts is whether this unit
    // still holds what the target has (read without a worker, so the check is synchronous).
    const t = Date.now();
    const sync = ks.withSyncDecode();
    const acks: Ack[] = [];
    for (const u of acked) {
      const found = sync.lookup(u.ns, u.key, t);
      if (found === null) continue;
      if (touched.has(watchId(u))) {
        const same = u.sent !== null && !(found.value instanceof Promise) && found.value.equals(u.sent) && found.expiresAt === u.expiresAt;
        if (!same) continue; // still changing: kept here, moved by a later MIGRATE
      }
      acks.push(ks.delete(u.ns, u.key, t).ack);
    }
    unwatch();
    await joinAcks(acks);
    return error ?? OK;
  } catch (err) {
    if (err instanceof RespClientError) return new ErrorReply('IOERR error or timeout reading to target instance');
    throw err;
  } finally {
    unwatch();
    client?.close();
  }
}
