/**
 * Moving keys between this server and Redis: DUMP, RESTORE, RESTORE-ASKING and MIGRATE, with
 * Redis' own serialization (protocol/rdb.ts), so a payload made by redis-server restores here and
 * ours restores on redis-server 7.0.
 *
 * A plain blob is a Redis string; a namespace is a Redis hash (each field a blob). A name that is
 * both is dumped and migrated as its blob, as TYPE answers "string" for it; RESTORE … REPLACE
 * replaces both, as DEL deletes both. A namespace has no expiry of its own: RESTORE gives a hash's
 * TTL to every field, and DUMP/MIGRATE report a namespace's TTL only when all its fields share one.
 */
import { ErrorReply, OK, SimpleString, type Reply } from '../protocol/reply.js';
import { decodeDump, DumpPayloadError, encodeDumpAsync, type DumpValue } from '../protocol/rdb.js';
import { RespClient, RespClientError, RespError, type RespValue } from '../protocol/client.js';
import { joinAcks, type Ack, type Keyspace, type PendingValue } from '../storage/keyspace.js';
import { keyword, NOT_INTEGER_TEXT, parseInt64, SYNTAX_ERROR_TEXT } from './args.js';
import { defineCommand, keyAfter, keyAt } from './define.js';
import { afterAck, type CommandSpec, type Handler } from './types.js';
import { migrateFields } from './migrate-fields.js';
import { collectTargetReplies, targetError, type MigrateRequest } from './migrate-target.js';

const BUSYKEY = new ErrorReply('BUSYKEY Target key name already exists.');
const SYNTAX_ERROR = new ErrorReply(SYNTAX_ERROR_TEXT);
const NOT_INTEGER = new ErrorReply(NOT_INTEGER_TEXT);
const BAD_FORMAT = new ErrorReply('ERR Bad data format');
const BAD_PAYLOAD = new ErrorReply('ERR DUMP payload version or checksum are wrong');
const INT64_MAX = 2n ** 63n - 1n;

/** What DUMP and MIGRATE send for a name, read at the command's clock reading. */
interface Snapshot {
  /** 'blob' or 'namespace': what MIGRATE deletes once the target has it. */
  kind: 'blob' | 'namespace';
  value: DumpValue | Promise<DumpValue>;
  /** Epoch ms, or null for none. */
  expiresAt: number | null;
}

/** The blob of a name if it has one, else its namespace, else null. */
export function snapshot(ks: Keyspace, key: Buffer, now: number): Snapshot | null {
  const found = ks.lookup(null, key, now);
  if (found !== null) {
    const v = found.value;
    const value = v instanceof Promise ? v.then((b): DumpValue => ({ type: 'string', value: b })) : { type: 'string' as const, value: v };
    return { kind: 'blob', value, expiresAt: found.expiresAt };
  }
  const fields = ks.namespaceFields(key, true, now);
  if (fields.length === 0) return null;
  let common: number | null | undefined;
  for (const f of fields) {
    const at = ks.expiry(key, f.field, now) ?? null;
    common = common === undefined || common === at ? at : null;
  }
  const values = fields.map((f) => f.value as PendingValue);
  const build = (vs: Buffer[]): DumpValue => ({ type: 'hash', fields: fields.map((f, i) => [f.field, vs[i]] as const) });
  const value = values.some((v) => v instanceof Promise) ? Promise.all(values).then(build) : build(values as Buffer[]);
  return { kind: 'namespace', value, expiresAt: common ?? null };
}

const dump: Handler = ({ ks, now }, args) => {
  const snap = snapshot(ks, args[1], now);
  if (snap === null) return null;
  return Promise.resolve(snap.value).then(encodeDumpAsync);
};

/** RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency] */
const restore: Handler = ({ ks, now }, args) => {
  let replace = false;
  let absttl = false;
  let idle = false;
  let freq = false;
  // Options first, in Redis' order of checks (restoreCommand): a bad option wins over a busy key.
  for (let j = 4; j < args.length; j++) {
    const opt = keyword(args[j]);
    const more = args.length - j - 1;
    if (opt === 'replace') replace = true;
    else if (opt === 'absttl') absttl = true;
    else if (opt === 'idletime' && more >= 1 && !freq) {
      const n = parseInt64(args[++j]);
      if (n === null) return NOT_INTEGER;
      if (n < 0n) return new ErrorReply('ERR Invalid IDLETIME value, must be >= 0');
      idle = true;
    } else if (opt === 'freq' && more >= 1 && !idle) {
      const n = parseInt64(args[++j]);
      if (n === null) return NOT_INTEGER;
      if (n < 0n || n > 255n) return new ErrorReply('ERR Invalid FREQ value, must be >= 0 and <= 255');
      freq = true;
    } else return SYNTAX_ERROR;
  }
  const key = args[1];
  const hasBlob = ks.exists(null, key, now);
  const hasNamespace = ks.namespaceExists(key, now);
  if (!replace && (hasBlob || hasNamespace)) return BUSYKEY;
  const ttl = parseInt64(args[2]);
  if (ttl === null) return NOT_INTEGER;
  if (ttl < 0n) return new ErrorReply('ERR Invalid TTL value, must be >= 0');
  let value: DumpValue;
  try {
    value = decodeDump(args[3], ks.maxValueBytes);
  } catch (err) {
    if (err instanceof DumpPayloadError) return err.reason === 'checksum' ? BAD_PAYLOAD : BAD_FORMAT;
    throw err;
  }
  const acks: Ack[] = [];
  if (replace) {
    if (hasBlob) acks.push(ks.delete(null, key, now).ack);
    if (hasNamespace) acks.push(ks.deleteNamespace(key));
  }
  let at: number | null = null;
  if (ttl !== 0n) {
    const abs = absttl ? ttl : ttl + BigInt(now);
    // Past (or, as Redis' overflowing addition, beyond 2^63-1): nothing is created; the old key is gone.
    if (abs <= BigInt(now) || abs > INT64_MAX) return afterAck(joinAcks(acks), OK);
    at = Number(abs);
  }
  const policy = at === null ? ('clear' as const) : { at };
  if (value.type === 'string') acks.push(ks.set(null, key, value.value, policy, now));
  else for (const [field, v] of value.fields) acks.push(ks.set(key, field, v, policy, now));
  return afterAck(joinAcks(acks), OK);
};

// ---- MIGRATE ------------------------------------------------------------------------------------

/** MIGRATE's arguments as Redis parses them (migrateCommand), or the error it answers. */
function parseMigrate(args: Buffer[]): MigrateRequest | ErrorReply {
  let copy = false;
  let replace = false;
  let username: Buffer | null = null;
  let password: Buffer | null = null;
  let keys = [args[3]];
  for (let j = 6; j < args.length; j++) {
    const more = args.length - 1 - j;
    const opt = keyword(args[j]);
    if (opt === 'copy') copy = true;
    else if (opt === 'replace') replace = true;
    else if (opt === 'auth') {
      if (more < 1) return SYNTAX_ERROR;
      password = args[++j];
    } else if (opt === 'auth2') {
      if (more < 2) return SYNTAX_ERROR;
      username = args[++j];
      password = args[++j];
    } else if (opt === 'keys') {
      if (args[3].length !== 0) return new ErrorReply('ERR When using MIGRATE KEYS option, the key argument must be set to the empty string');
      keys = args.slice(j + 1);
      break;
    } else return SYNTAX_ERROR;
  }
  const timeout = parseInt64(args[5]);
  const db = parseInt64(args[4]);
  if (timeout === null || db === null) return NOT_INTEGER;
  return {
    host: args[1].toString(),
    port: Number(args[2].toString()) | 0,
    db,
    timeoutMs: timeout <= 0n ? 1000 : Number(timeout > 2_147_483_647n ? 2_147_483_647n : timeout),
    copy,
    replace,
    username,
    password,
    keys,
  };
}

/**
 * MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH pw] [AUTH2 user pw] [KEYS k…]
 * Sends AUTH, SELECT and one RESTORE per key on a fresh connection (RESTORE-ASKING in cluster mode)
 * and deletes each key the target acknowledged, unless COPY. The values are read when the command
 * runs and other clients keep writing meanwhile (Redis blocks instead): a key written while its
 * copy was on the way is sent again (RESTORE … REPLACE, or DEL when it is gone) until a round
 * finds it unchanged, and only then deleted, in the same turn as that check.
 */
const migrate: Handler = ({ ks, server, now }, args) => {
  const req = parseMigrate(args);
  if (req instanceof ErrorReply) return req;
  // Field mode: a slot holds fields of many namespaces, moved one by one (migrate-fields.ts).
  if (server.cluster?.namespaceRouting === 'field') return migrateFields(ks, req, now);
  const found: { key: Buffer; snap: Snapshot }[] = [];
  for (const key of req.keys) {
    const snap = snapshot(ks, key, now);
    if (snap !== null) found.push({ key, snap });
  }
  if (found.length === 0) return new SimpleString('NOKEY');
  return runMigrate(ks, req, found, server.cluster !== undefined);
};

async function runMigrate(
  ks: Keyspace,
  req: MigrateRequest,
  found: { key: Buffer; snap: Snapshot }[],
  clustered: boolean,
): Promise<Reply> {
  // Watched from the same turn as the snapshots (this runs synchronously up to its first await): a
  // write that lands while the connection opens must be seen, or its key would be deleted here
  // after an older copy was sent (an acknowledged write lost).
  const touched = new Set<string>();
  const watchers = found.map(({ key }) => ({ key, w: { keyTouched: () => touched.add(key.toString('latin1')) } }));
  if (!req.copy) for (const { key, w } of watchers) ks.watch(key, w);
  let client: RespClient;
  try {
    client = await RespClient.connect({ host: req.host, port: req.port, timeoutMs: req.timeoutMs, maxReplyBytes: 1024 });
  } catch {
    for (const { key, w } of watchers) ks.unwatch(key, w);
    return new ErrorReply('IOERR error or timeout connecting to the client');
  }
  try {
    const auth = req.password === null ? null : client.send(req.username === null ? ['AUTH', req.password] : ['AUTH', req.username, req.password]);
    const select = client.send(['SELECT', req.db.toString()]);
    const sent: { item: Buffer; reply: Promise<RespValue> }[] = [];
    for (const { key, snap } of found) {
      let ttl = 0;
      if (snap.expiresAt !== null) {
        ttl = snap.expiresAt - Date.now();
        if (ttl < 0) continue;
        if (ttl < 1) ttl = 1;
      }
      const payload = await encodeDumpAsync(await snap.value);
      const cmd: (string | Buffer)[] = [clustered ? 'RESTORE-ASKING' : 'RESTORE', key, String(ttl), payload];
      if (req.replace) cmd.push('REPLACE');
      sent.push({ item: key, reply: client.send(cmd) });
    }
    const replies = await collectTargetReplies(auth, select, sent, req.copy);
    let error = replies.error;
    const { refused, acked } = replies;
    if (refused || acked.length === 0) return error ?? OK;
    for (let round = 0; round < RESEND_ROUNDS && touched.size > 0 && error === null; round++) {
      const resend = acked.filter((k) => touched.has(k.toString('latin1')));
      touched.clear();
      const replies: Promise<RespValue>[] = [];
      for (const key of resend) {
        const snap = snapshot(ks, key, Date.now());
        if (clustered) replies.push(client.send(['ASKING']));
        if (snap === null) replies.push(client.send(['DEL', key]));
        else {
          const ttl = snap.expiresAt === null ? 0 : Math.max(1, snap.expiresAt - Date.now());
          replies.push(client.send([clustered ? 'RESTORE-ASKING' : 'RESTORE', key, String(ttl), await encodeDumpAsync(await snap.value), 'REPLACE']));
        }
      }
      for (const r of replies) {
        const reply = await r;
        if (reply instanceof RespError) error ??= targetError(reply);
      }
    }
    // From this check to the deletes nothing awaits: no write can slip in between.
    const t = Date.now();
    const acks: Ack[] = [];
    for (const key of acked) {
      if (touched.has(key.toString('latin1'))) continue; // still changing: kept here, sent by a later MIGRATE
      if (ks.exists(null, key, t)) acks.push(ks.delete(null, key, t).ack);
      if (ks.namespaceExists(key, t)) acks.push(ks.deleteNamespace(key));
    }
    for (const { key, w } of watchers) ks.unwatch(key, w);
    await joinAcks(acks);
    return error ?? OK;
  } catch (err) {
    // Node queues writes, so a broken connection shows up while reading the replies.
    if (err instanceof RespClientError) return new ErrorReply('IOERR error or timeout reading to target instance');
    throw err;
  } finally {
    for (const { key, w } of watchers) ks.unwatch(key, w);
    client.close();
  }
}

/** How many times MIGRATE sends again keys written while their copies were on the way. */
const RESEND_ROUNDS = 8;

const RESTORE_COMPLEXITY =
  'O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N)).';

export const migrateCommands: CommandSpec[] = [
  defineCommand({
    name: 'dump',
    group: 'generic',
    summary: 'Return a serialized version of the value stored at the specified key.',
    complexity:
      'O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1).',
    since: '2.6.0',
    arity: 2,
    flags: ['readonly'],
    categories: ['keyspace'],
    tips: ['nondeterministic_output'],
    keys: [keyAt(1, ['RO', 'access'])],
    handler: dump,
  }),
  defineCommand({
    name: 'restore',
    group: 'generic',
    summary: 'Create a key using the provided serialized value, previously obtained using DUMP.',
    complexity: RESTORE_COMPLEXITY,
    since: '2.6.0',
    arity: -4,
    flags: ['write', 'denyoom'],
    categories: ['keyspace', 'dangerous'],
    keys: [keyAt(1, ['OW', 'update'])],
    handler: restore,
  }),
  defineCommand({
    name: 'restore-asking',
    group: 'server',
    summary: 'An internal command for migrating keys in a cluster',
    complexity: RESTORE_COMPLEXITY,
    since: '3.0.0',
    arity: -4,
    flags: ['write', 'denyoom', 'asking'],
    categories: ['keyspace', 'dangerous'],
    docFlags: ['syscmd'],
    keys: [keyAt(1, ['OW', 'update'])],
    handler: restore,
  }),
  defineCommand({
    name: 'migrate',
    group: 'generic',
    summary: 'Atomically transfer a key from a Redis instance to another one.',
    complexity:
      'This command actually executes a DUMP+DEL in the source instance, and a RESTORE in the target instance. See the pages of these commands for time complexity. Also an O(N) data transfer between the two instances is performed.',
    since: '2.6.0',
    arity: -6,
    flags: ['write'],
    categories: ['keyspace', 'dangerous'],
    tips: ['nondeterministic_output'],
    keys: [keyAt(3, ['RW', 'access', 'delete']), keyAfter('KEYS', -2, ['RW', 'access', 'delete', 'incomplete'], { lastkey: -1 })],
    handler: migrate,
  }),
];
