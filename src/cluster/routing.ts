/**
 * Cluster routing of one command. Which arguments are keys comes only from the command table
 * (`CommandSpec.legacyKeys`, `CommandSpec.fields`); the slot of those keys decides whether this node runs the command, sends
 * the client elsewhere (-MOVED), or cannot serve it (-CLUSTERDOWN, -CROSSSLOT).
 */
import { ErrorReply } from '../protocol/reply.js';
import type { CommandSpec } from '../commands/types.js';
import { keySlot } from './slots.js';
import type { ClusterState } from './state.js';

export const CROSSSLOT = new ErrorReply("CROSSSLOT Keys in request don't hash to the same slot");
export const SLOT_NOT_SERVED = new ErrorReply('CLUSTERDOWN Hash slot not served');

export const TRYAGAIN = new ErrorReply('TRYAGAIN Multiple keys request during rehashing of slot');

/** Connections that sent READONLY: a replica serves them reads of its primary's slots. */
export const readonlyClients = new WeakSet<object>();
/** Connections whose next command follows an -ASK (they sent ASKING): an importing slot serves it. */
export const askingClients = new WeakSet<object>();

/**
 * Whether a key exists here (live), for the keys of a slot being moved: a plain key or namespace
 * of that name (`'name'`), only a plain key (`'blob'`), or the field `key` of namespace `scope`.
 */
export type KeyProbe = (key: Buffer, scope: Buffer | 'name' | 'blob') => boolean;

/**
 * MIGRATE's keys, as Redis' migrateGetKeys finds them: with KEYS (searched from the 7th
 * argument) and an empty key argument, the keys after KEYS; else the key argument.
 */
function migrateKeys(args: readonly Buffer[]): Buffer[] {
  if (args.length > 3 && args[3].length === 0) {
    for (let i = 6; i < args.length; i++) if (args[i].toString('latin1').toUpperCase() === 'KEYS') return args.slice(i + 1);
  }
  return args.length > 3 ? [args[3]] : [];
}

/** The key arguments at the spec's (first, last, step) positions. */
export function keyArgs(spec: CommandSpec, args: readonly Buffer[]): Buffer[] {
  const k = spec.legacyKeys;
  if (k === null || k.first <= 0 || k.step <= 0) return [];
  const last = Math.min(k.last < 0 ? args.length + k.last : k.last, args.length - 1);
  const out: Buffer[] = [];
  for (let i = k.first; i <= last; i += k.step) out.push(args[i]);
  return out;
}

/**
 * The fields of a namespaced (hash-group) command, for `namespace_routing = "field"`, at the
 * positions its spec declares (`fields`): HSET's field/value pairs, HDEL's list, HGET's one field,
 * HEXPIRE's `FIELDS numfields field…`. null when the spec declares none (HGETALL, HSCAN…: the whole
 * namespace) or the call has no field there; the command then routes by the namespace.
 */
export function fieldArgs(spec: CommandSpec, args: readonly Buffer[]): Buffer[] | null {
  const f = spec.fields;
  if (f === null) return null;
  let first: number;
  let last: number;
  if ('keyword' in f) {
    let at = -1;
    for (let i = 2; i < args.length && at < 0; i++) if (args[i].toString('latin1').toUpperCase() === f.keyword) at = i;
    if (at < 0) return null;
    first = at + 2; // after the keyword and numfields
    last = args.length - 1;
  } else {
    first = f.first;
    last = f.last < 0 ? args.length + f.last : f.last;
  }
  const out: Buffer[] = [];
  for (let i = first; i <= last && i < args.length; i += f.step) out.push(args[i]);
  return out.length > 0 ? out : null;
}

/** The arguments whose slot decides where the command runs. */
export function routingKeys(spec: CommandSpec, args: readonly Buffer[], mode: 'namespace' | 'field'): Buffer[] {
  if (mode === 'field') {
    const fields = fieldArgs(spec, args);
    if (fields !== null) return fields;
  }
  return keyArgs(spec, args);
}

/** The slot all routing keys share; -1 when the command has no keys, -2 when they differ. */
export function commandSlot(spec: CommandSpec, args: readonly Buffer[], mode: 'namespace' | 'field'): number {
  const keys = routingKeys(spec, args, mode);
  let slot = -1;
  for (const key of keys) {
    const s = keySlot(key);
    if (slot === -1) slot = s;
    else if (s !== slot) return -2;
  }
  return slot;
}

/**
 * null when this node runs the command; otherwise the error that redirects or refuses it. The
 * checks run in Redis' order (getNodeByQuery): the first key's slot must be served (else
 * -CLUSTERDOWN), every later key must share it (else -CROSSSLOT), then -MOVED if it is not ours.
 */
export function routeCommand(cluster: ClusterState, spec: CommandSpec, args: readonly Buffer[], client?: object, probe?: KeyProbe): ErrorReply | null {
  // ASKING holds for the one command after it, as Redis' CLIENT_ASKING flag.
  const asking = client !== undefined && askingClients.has(client);
  if (asking && spec.name !== 'asking') askingClients.delete(client);
  if (spec.legacyKeys === null) return null;
  const fields = spec.name === 'migrate' || cluster.namespaceRouting !== 'field' ? null : fieldArgs(spec, args);
  const keys = spec.name === 'migrate' ? migrateKeys(args) : (fields ?? keyArgs(spec, args));
  if (keys.length === 0) return null;
  // In field mode a slot holds plain keys and fields (a moving slot asks about (namespace, field)),
  // never whole namespaces: a command on a whole namespace is served where it routes.
  let here: ((k: Buffer) => boolean) | undefined;
  if (probe !== undefined) {
    if (cluster.namespaceRouting !== 'field') here = (k) => probe(k, 'name');
    else if (fields !== null) here = (k) => probe(k, args[1]);
    else if (spec.group === 'hash') here = () => true;
    else here = (k) => probe(k, 'blob');
  }
  const slot = keySlot(keys[0]);
  const r = cluster.route(slot);
  if (r.kind === 'down') return SLOT_NOT_SERVED;
  for (let i = 1; i < keys.length; i++) if (keySlot(keys[i]) !== slot) return CROSSSLOT;
  // A slot being moved (Redis' getNodeByQuery): the source serves the keys it still has and sends
  // the rest to the target with -ASK; the target serves a command only after ASKING. MIGRATE
  // itself always runs where it is sent.
  const migratingTo = r.kind === 'self' ? cluster.migrating.get(slot) : undefined;
  const importing = r.kind !== 'self' && cluster.importing.has(slot);
  if ((migratingTo !== undefined || importing) && spec.name === 'migrate') return null;
  if (migratingTo !== undefined && here !== undefined && keys.some((k) => !here(k))) {
    const target = cluster.node(migratingTo);
    if (target !== undefined) return new ErrorReply(`ASK ${slot} ${target.host === '' ? '127.0.0.1' : target.host}:${target.port}`);
  }
  if (importing && (asking || spec.flags.includes('asking'))) {
    if (keys.length > 1 && here !== undefined && keys.some((k) => !here(k))) return TRYAGAIN;
    return null;
  }
  if (r.kind === 'self') return null;
  // A replica answers reads of its primary's slots to a client that asked for it (READONLY).
  const replicaRead = client !== undefined && readonlyClients.has(client) && spec.flags.includes('readonly') && cluster.myself.replicaOf === r.node.id;
  if (replicaRead) return null;
  return new ErrorReply(`MOVED ${slot} ${r.node.host === '' ? '127.0.0.1' : r.node.host}:${r.node.port}`);
}
