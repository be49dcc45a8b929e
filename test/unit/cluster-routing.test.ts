/** Cluster routing from the command table's key positions, slot ownership and failure flags. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commandTable } from '../../src/commands/table.js';
import type { CommandSpec } from '../../src/commands/types.js';
import { LineReader, parseMessage } from '../../src/cluster/gossip.js';
import { commandSlot, fieldArgs, keyArgs, routeCommand } from '../../src/cluster/routing.js';
import { configSlots, formatRanges, keySlot, slotsToRanges } from '../../src/cluster/slots.js';
import { ClusterState, nodeIdFor, type NodeRecord } from '../../src/cluster/state.js';
import { createLogger } from '../../src/observability/log.js';
import { pino } from 'pino';
import { Writable } from 'node:stream';

const log = createLogger('silent', false);
const b = (...xs: string[]): Buffer[] => xs.map((x) => Buffer.from(x));

function spec(name: string): CommandSpec {
  const s = commandTable.lookup(name);
  assert.ok(s, name);
  return s;
}

function state(slots: [number, number][], opts: { mode?: 'namespace' | 'field'; now?: () => number; timeout?: number } = {}): ClusterState {
  return new ClusterState({
    name: 'me',
    host: '127.0.0.1',
    port: 7000,
    busPort: 17000,
    slots: configSlots(slots.map(([start, end]) => ({ start, end })), []),
    nodeTimeoutMs: opts.timeout ?? 1000,
    namespaceRouting: opts.mode ?? 'namespace',
    log,
    ...(opts.now === undefined ? {} : { now: opts.now }),
  });
}

function peer(name: string, port: number, slots: [number, number][], inc = 1, ver = 0, epoch = 0): NodeRecord {
  return { id: nodeIdFor(name), name, host: '127.0.0.1', port, busHost: '', busPort: port + 10000, slots, inc, ver, epoch };
}

/** One record merged as one message would merge it (the slot table settled afterwards). */
function merge(s: ClusterState, r: NodeRecord, direct: boolean): void {
  s.merge(r, direct);
  s.settle();
}

test('slots: CRC16 with hash tags, as Redis computes them', () => {
  assert.equal(keySlot('foo'), 12182);
  assert.equal(keySlot('a'), 15495);
  assert.equal(keySlot('{user1}.following'), keySlot('{user1}.followers'));
  assert.equal(keySlot('{}x'), keySlot(Buffer.from('{}x')));
  assert.deepEqual(slotsToRanges(configSlots([{ start: 0, end: 5 }, { start: 10, end: 10 }], [6, 16383])), [[0, 6], [10, 10], [16383, 16383]]);
  assert.equal(formatRanges([[0, 5460], [9000, 9000]]), '0-5460 9000');
});

test('node ids: 40 hex characters, pinned so they never change between versions', () => {
  assert.equal(nodeIdFor('node-1'), '36e18dff4b26a0f2c69eb6da1b61a55b8a257442');
  assert.equal(nodeIdFor('node-2'), 'aa02580e4b2b57847941693b5e2fdf7ded037e70');
  assert.match(nodeIdFor('ü'), /^[0-9a-f]{40}$/);
});

test('key positions come from the command table', () => {
  assert.deepEqual(keyArgs(spec('get'), b('get', 'k')), b('k'));
  assert.deepEqual(keyArgs(spec('del'), b('del', 'a', 'b', 'c')), b('a', 'b', 'c'));
  assert.deepEqual(keyArgs(spec('hset'), b('hset', 'ns', 'f', 'v')), b('ns'));
  assert.deepEqual(keyArgs(spec('ping'), b('ping')), []);
  // Field mode: fields follow the namespace; pairs for HSET, a list for HDEL, one for HGET.
  assert.deepEqual(fieldArgs(spec('hset'), b('hset', 'ns', 'f1', 'v1', 'f2', 'v2')), b('f1', 'f2'));
  assert.deepEqual(fieldArgs(spec('hdel'), b('hdel', 'ns', 'f1', 'f2')), b('f1', 'f2'));
  assert.deepEqual(fieldArgs(spec('hget'), b('hget', 'ns', 'f')), b('f'));
  assert.deepEqual(fieldArgs(spec('hexists'), b('hexists', 'ns', 'f')), b('f'));
  assert.equal(fieldArgs(spec('get'), b('get', 'k')), null);
  // Whole-namespace commands have no field: they route by the namespace.
  for (const [name, ...rest] of [['hgetall'], ['hlen'], ['hscan', '0', 'COUNT', '5'], ['hrandfield', '2']]) {
    if (commandTable.lookup(name) !== undefined) assert.equal(fieldArgs(spec(name), b(name, 'ns', ...rest)), null, name);
  }
  if (commandTable.lookup('hmget') !== undefined) assert.deepEqual(fieldArgs(spec('hmget'), b('hmget', 'ns', 'a', 'b')), b('a', 'b'));
  if (commandTable.lookup('hsetnx') !== undefined) assert.deepEqual(fieldArgs(spec('hsetnx'), b('hsetnx', 'ns', 'a', 'v')), b('a'));
  // Every command with keys in the table yields at least one key for a minimal valid call.
  for (const s of commandTable.all) {
    if (s.legacyKeys === null) continue;
    const args = [Buffer.from(s.name), ...Array.from({ length: Math.abs(s.arity) - 1 }, (_, i) => Buffer.from(`a${i}`))];
    assert.ok(keyArgs(s, args).length > 0, s.name);
  }
});

test('commandSlot: same slot, different slots, no keys', () => {
  assert.equal(commandSlot(spec('del'), b('del', '{t}a', '{t}b'), 'namespace'), keySlot('t'));
  assert.equal(commandSlot(spec('del'), b('del', 'a', 'b'), 'namespace'), -2);
  assert.equal(commandSlot(spec('ping'), b('ping'), 'namespace'), -1);
  assert.equal(commandSlot(spec('hget'), b('hget', 'ns', 'foo'), 'namespace'), keySlot('ns'));
  assert.equal(commandSlot(spec('hget'), b('hget', 'ns', 'foo'), 'field'), keySlot('foo'));
  assert.equal(commandSlot(spec('hset'), b('hset', 'ns', 'a', '1', 'b', '2'), 'field'), -2);
});

test('routeCommand: self, MOVED, CROSSSLOT, CLUSTERDOWN', () => {
  const s = state([[0, 8191]]);
  merge(s, peer('other', 7001, [[8192, 10000]]), true);
  const route = (...args: string[]) => routeCommand(s, spec(args[0]), b(...args))?.message ?? null;
  assert.equal(route('get', 'b'), null); // slot 3300
  assert.equal(route('get', 'ns'), 'MOVED 9937 127.0.0.1:7001');
  assert.equal(route('get', '{b}foo'), null);
  assert.equal(route('get', 'a'), 'CLUSTERDOWN Hash slot not served'); // 15495: nobody
  assert.equal(route('del', 'a', 'b'), 'CLUSTERDOWN Hash slot not served'); // first key first, as Redis
  assert.equal(route('del', 'b', 'a'), "CROSSSLOT Keys in request don't hash to the same slot");
  assert.equal(route('ping'), null);
  assert.equal(route('hset', 'b', 'a', 'x'), null); // routed by the namespace "b"
  const f = state([[0, 8191]], { mode: 'field' });
  assert.equal(routeCommand(f, spec('hset'), b('hset', 'b', 'a', 'x'))?.message, 'CLUSTERDOWN Hash slot not served');
  assert.equal(routeCommand(f, spec('hset'), b('hset', 'a', 'b', 'x')), null);
});

test('failure flags follow silence; a message brings the node back', () => {
  let now = 1_000_000;
  const s = state([[0, 100]], { now: () => now, timeout: 1000 });
  merge(s, peer('p', 7001, [[101, 16383]]), true);
  assert.equal(s.summary().state, 'ok');
  assert.equal(state([[0, 16382]]).summary().state, 'fail');
  now += 400;
  s.checkFailures();
  assert.equal(s.node(nodeIdFor('p'))!.pfail, false);
  now += 200;
  s.checkFailures();
  assert.equal(s.node(nodeIdFor('p'))!.pfail, true);
  now += 500;
  s.checkFailures();
  const p = s.node(nodeIdFor('p'))!;
  assert.equal(p.failed, true);
  assert.deepEqual(s.route(200), { kind: 'down', why: 'failed' });
  assert.equal(s.summary().fail, 16283);
  merge(s, peer('p', 7001, [[101, 16383]]), true);
  assert.equal(p.failed, false);
  assert.equal(s.route(200).kind, 'moved');
});

test('two nodes claiming one slot: the higher epoch serves it, on every node alike', () => {
  const s = state([[0, 10]]); // epoch 0
  merge(s, peer('x', 7001, [[5, 20]], 1, 0, 3), true);
  merge(s, peer('y', 7002, [[21, 16383]]), true);
  assert.deepEqual(s.slotConflicts(), { count: 6, ranges: '5-10 (x over me)' });
  assert.equal(s.route(5).kind, 'moved');
  assert.equal(s.owner(5)!.name, 'x');
  assert.deepEqual(s.route(4), { kind: 'self' });
  assert.deepEqual(s.myself.owned, [[0, 4]]);
  assert.deepEqual(s.node(nodeIdFor('x'))!.owned, [[5, 20]]);
  assert.equal(s.summary().state, 'ok'); // settled, not a permanent failure
  assert.equal(s.currentEpoch(), 3);
  // x restarts without the overlap (a newer incarnation): no contest left.
  merge(s, peer('x', 7001, [[11, 20]], 2, 0, 3), false);
  assert.deepEqual(s.slotConflicts(), { count: 0, ranges: '' });
  assert.deepEqual(s.myself.owned, [[0, 10]]);
  assert.equal(s.summary().state, 'ok');
});

test('equal epochs: the lower node id wins, whichever record arrives first', () => {
  const [lo, hi] = ['a', 'b', 'c', 'd'].map((n) => ({ n, id: nodeIdFor(n) })).sort((p, q) => (p.id < q.id ? -1 : 1));
  for (const order of [[lo, hi], [hi, lo]]) {
    const s = state([[100, 16383]]);
    for (const p of order) merge(s, peer(p.n, 7001, [[0, 99]], 1, 0, 7), true);
    assert.equal(s.owner(50)!.name, lo.n);
    assert.equal(s.slotConflicts().count, 100);
  }
});

test('a slot conflict is logged once, with the slots and the nodes', () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const s = new ClusterState({
    name: 'me', host: '127.0.0.1', port: 7000, busPort: 17000, slots: configSlots([{ start: 0, end: 10 }], []), epoch: 5,
    nodeTimeoutMs: 1000, namespaceRouting: 'namespace', log: pino({ level: 'info' }, sink),
  });
  merge(s, peer('x', 7001, [[5, 20]]), true);
  merge(s, peer('x', 7001, [[5, 20]]), true);
  const warnings = lines.filter((l) => l.level === 40);
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0].conflicts, '5-10 (me over x)');
  assert.match(String(warnings[0].msg), /slot ownership conflict/);
});

test('one message with many nodes rebuilds the slot table once, in bounded time', () => {
  const s = state([[0, 16383]]);
  const before = s.rebuilds;
  const flood = Array.from({ length: 1500 }, (_, i) => peer(`f${i}`, 1, [[0, 16383]], 1, 0, i));
  const t0 = performance.now();
  s.absorb(peer('sender', 2, [[0, 16383]]), flood, true);
  const ms = performance.now() - t0;
  assert.equal(s.rebuilds - before, 1);
  assert.equal(s.size, 1000); // the known-node cap, this node included
  assert.equal(s.stats.nodesRefused, 502); // 1500 - (1000 - this node - the sender)
  assert.equal(s.owner(0)!.epoch, 997); // the highest epoch among those admitted (f0..f997)
  assert.ok(ms < 2000, `${ms} ms`);
});

test('older incarnations are refused; CLUSTER FORGET keeps a node out for a while', () => {
  let now = 1_000_000;
  const s = state([[0, 10]], { now: () => now });
  merge(s, peer('x', 7001, [[11, 20]], 5, 1), true);
  assert.equal(s.refuses(peer('x', 7001, [[11, 20]], 4, 9)), 'stale');
  assert.equal(s.refuses(peer('x', 7001, [[11, 20]], 5, 0)), null);
  // Even a direct message of an older incarnation changes nothing.
  merge(s, peer('x', 9999, [[0, 16383]], 4, 9, 99), true);
  assert.equal(s.node(nodeIdFor('x'))!.port, 7001);
  assert.equal(s.forget(s.myself.id), 'myself');
  assert.equal(s.forget('0'.repeat(40)), 'unknown');
  assert.equal(s.forget(nodeIdFor('x')), 'ok');
  assert.equal(s.node(nodeIdFor('x')), undefined);
  assert.equal(s.route(15).kind, 'down');
  merge(s, peer('x', 7001, [[11, 20]], 6, 0), false);
  assert.equal(s.node(nodeIdFor('x')), undefined);
  assert.equal(s.refuses(peer('x', 7001, [[11, 20]], 6, 0)), 'forgotten');
  now += 60_000;
  merge(s, peer('x', 7001, [[11, 20]], 6, 0), false);
  assert.equal(s.route(15).kind, 'moved');
});

test('LineReader cuts a line off at the cap before buffering it', () => {
  const r = new LineReader(10);
  assert.deepEqual(r.push(Buffer.from('abc\nde')), [Buffer.from('abc')]);
  assert.deepEqual(r.push(Buffer.from('f\n\ngh')), [Buffer.from('def'), Buffer.from('')]);
  assert.deepEqual(r.push(Buffer.from('12345678')), []); // "gh12345678": 10 bytes, at the cap
  assert.equal(r.push(Buffer.from('9')), null);
  assert.equal(new LineReader(10).push(Buffer.alloc(1024 * 1024, 'a')), null);
  assert.equal(new LineReader(10).push(Buffer.from('01234567890\n')), null);
});

test('third-party gossip only replaces older incarnations', () => {
  const s = state([[0, 10]]);
  merge(s, peer('x', 7001, [[11, 20]], 5, 1), true);
  merge(s, peer('x', 9999, [[11, 30]], 5, 0), false);
  assert.equal(s.node(nodeIdFor('x'))!.port, 7001);
  merge(s, peer('x', 9999, [[11, 30]], 6, 0), false);
  assert.equal(s.node(nodeIdFor('x'))!.port, 9999);
});

test('gossip message validation rejects anything malformed', () => {
  const good = { t: 'ping', from: peer('a', 1, [[0, 1]]), nodes: [peer('b', 2, [])], to: '', ts: 1, nonce: 'ab'.repeat(16) };
  assert.ok(parseMessage(good));
  assert.ok(parseMessage({ ...good, to: nodeIdFor('c'), seen: '::1' }));
  const named = (name: string) => ({ ...good, from: { ...good.from, name, id: nodeIdFor(name) } });
  assert.ok(parseMessage(named('node-1.a_b')));
  const bad: unknown[] = [
    null,
    42,
    [],
    { ...good, t: 'hello' },
    { ...good, from: { ...good.from, id: 'x'.repeat(40) } },
    { ...good, from: { ...good.from, port: 70000 } },
    { ...good, from: { ...good.from, slots: [[5, 1]] } },
    { ...good, from: { ...good.from, slots: [[0, 16384]] } },
    { ...good, from: { ...good.from, slots: 'all' } },
    { ...good, from: { ...good.from, host: 'a b' } },
    { ...good, from: { ...good.from, host: 'a\nb' } },
    { ...good, from: { ...good.from, host: 'a\u0000b' } },
    { ...good, from: { ...good.from, host: 'h'.repeat(254) } },
    { ...good, from: { ...good.from, busHost: 'x,y' } },
    { ...good, from: { ...good.from, epoch: -1 } },
    { ...good, from: { ...good.from, epoch: 1.5 } },
    named('evil\nffff 127.0.0.1:1@2,x myself,master - 0 0 0 connected 0-16383'),
    named('two words'),
    named('tab\there'),
    named('comma,name'),
    named('n'.repeat(129)),
    named(''),
    { ...good, nodes: [{}] },
    { ...good, nodes: 'x' },
    { ...good, seen: 5 },
    { ...good, seen: 'a\r\nb' },
    { ...good, from: { ...good.from, inc: -1 } },
    { ...good, to: 'me' },
    { ...good, to: undefined },
    { ...good, ts: -1 },
    { ...good, ts: '1' },
    { ...good, nonce: 'short' },
    { ...good, nonce: undefined },
  ];
  for (const m of bad) assert.equal(parseMessage(m), null, JSON.stringify(m));
});

/**
 * Field routing as it was derived from arity before specs declared it (HSET-like pairs at -4 or
 * lower, a list at -3 on fast commands, one field at fixed arity ≥ 3). Kept here to show the
 * declarations route every hash command that has no FIELDS keyword exactly as before.
 */
function fieldsFromArity(s: CommandSpec, args: readonly Buffer[]): Buffer[] | null {
  const k = s.legacyKeys;
  if (k === null || s.group !== 'hash' || k.first !== k.last) return null;
  const first = k.first + 1;
  let step: number;
  let last: number;
  if (s.arity <= -4) [step, last] = [2, args.length - 1];
  else if (s.arity === -3 && s.flags.includes('fast')) [step, last] = [1, args.length - 1];
  else if (s.arity >= first + 1) [step, last] = [1, first];
  else return null;
  const out: Buffer[] = [];
  for (let i = first; i <= last && i < args.length; i += step) out.push(args[i]);
  return out.length > 0 ? out : null;
}

test('declared field positions route as the arity rule did, for every hash command without FIELDS', () => {
  let checked = 0;
  for (const s of commandTable.all) {
    if (s.group !== 'hash' || (s.fields !== null && 'keyword' in s.fields)) continue;
    for (let n = Math.abs(s.arity); n <= Math.abs(s.arity) + 5; n++) {
      if (s.arity > 0 && n !== s.arity) continue;
      const args = [Buffer.from(s.name), ...Array.from({ length: n - 1 }, (_, i) => Buffer.from(`a${i}`))];
      assert.deepEqual(fieldArgs(s, args), fieldsFromArity(s, args), `${s.name} with ${n} words`);
      checked++;
    }
  }
  assert.ok(checked > 30);
});

test('FIELDS numfields field…: the fields after the keyword and its count', () => {
  assert.deepEqual(fieldArgs(spec('hexpire'), b('hexpire', 'ns', '100', 'FIELDS', '2', 'f1', 'f2')), b('f1', 'f2'));
  assert.deepEqual(fieldArgs(spec('hpexpireat'), b('hpexpireat', 'ns', '100', 'nx', 'fields', '1', 'f1')), b('f1'));
  assert.deepEqual(fieldArgs(spec('httl'), b('httl', 'ns', 'FIELDS', '1', 'FIELDS')), b('FIELDS'));
  assert.deepEqual(fieldArgs(spec('hpersist'), b('hpersist', 'ns', 'FIELDS', '2', 'a', 'b')), b('a', 'b'));
  assert.deepEqual(fieldArgs(spec('hsetex'), b('hsetex', 'ns', 'EX', '10', 'FIELDS', '2', 'f1', 'v1', 'f2', 'v2')), b('f1', 'f2'));
  // Without the keyword there is no field: the namespace routes it (and the handler refuses it).
  assert.equal(fieldArgs(spec('hexpire'), b('hexpire', 'ns', '100', 'NX', 'f1', 'f2')), null);
  assert.equal(commandSlot(spec('httl'), b('httl', 'ns', 'FIELDS', '2', '{t}a', '{t}b'), 'field'), keySlot('t'));
  assert.equal(commandSlot(spec('httl'), b('httl', 'ns', 'FIELDS', '2', 'a', 'b'), 'field'), -2);
  assert.equal(commandSlot(spec('httl'), b('httl', 'ns', 'FIELDS', '2', 'a', 'b'), 'namespace'), keySlot('ns'));
});

test('RENAME has two key specs; its legacy triple (1, 2, 1) routes both keys', () => {
  assert.equal(spec('rename').keySpecs.length, 2);
  assert.deepEqual(spec('rename').legacyKeys, { first: 1, last: 2, step: 1 });
  assert.deepEqual(keyArgs(spec('rename'), b('rename', 'a', 'b')), b('a', 'b'));
  assert.deepEqual(keyArgs(spec('mset'), b('mset', 'a', '1', 'b', '2')), b('a', 'b'));
});
