/** defineCommand(): what it refuses, what it derives, and the specs of commands newer than Redis 7.0. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defineCommand, keyAfter, keyAt, type CommandDeclaration } from '../../src/commands/define.js';
import { commandTable } from '../../src/commands/table.js';
import { SimpleString } from '../../src/protocol/reply.js';

const base: CommandDeclaration = {
  name: 'x',
  group: 'generic',
  summary: 'X',
  since: '1.0.0',
  arity: 2,
  flags: ['readonly', 'fast'],
  keys: [keyAt(1, ['RO', 'access'])],
  handler: () => new SimpleString('OK'),
};

test('defineCommand refuses specs Redis would not have', () => {
  const refused: [string, Partial<CommandDeclaration>, RegExp][] = [
    ['upper-case name', { name: 'GET' }, /lower-case/],
    ['arity 0', { arity: 0 }, /arity 0/],
    ['unknown flag', { flags: ['readonly', 'quick' as 'fast'] }, /unknown flag quick/],
    ['flag twice', { flags: ['fast', 'fast'] }, /twice/],
    ['write and readonly', { flags: ['write', 'readonly'] }, /exclude/],
    ['a derived category', { categories: ['read' as 'string'] }, /follows from the flags/],
    ['unknown category', { categories: ['blob' as 'string'] }, /unknown ACL category/],
    ['unknown tip', { tips: ['request_policy:everywhere'] }, /unknown tip/],
    ['key beyond arity', { keys: [keyAt(2, ['RO'])] }, /beyond arity/],
    ['range to the end on a fixed arity', { keys: [keyAt(1, ['RO'], { lastkey: -1 })] }, /variable arity/],
    ['two access flags', { keys: [keyAt(1, ['RO', 'RW'])] }, /exactly one of/],
    ['keys without read or write', { flags: ['fast'] }, /either write or readonly/],
    ['fields on a non-hash command', { fields: { first: 2 }, arity: -3 }, /only on hash commands/],
    ['fields beyond arity', { group: 'hash', fields: { first: 2 } }, /not within arity/],
    ['a subcommand named for another container', { subcommands: [defineCommand({ ...base, name: 'y|z', arity: 2 })] }, /not named x\|/],
    ['a bad version', { since: '7' }, /not a version/],
  ];
  for (const [what, change, message] of refused) {
    assert.throws(() => defineCommand({ ...base, ...change }), message, what);
  }
  assert.doesNotThrow(() => defineCommand(base));
});

test('ACL categories follow the flags as setImplicitACLCategories does, in Redis\' order', () => {
  const cats = (flags: CommandDeclaration['flags'], categories: CommandDeclaration['categories'] = []) =>
    defineCommand({ ...base, flags, categories, keys: [] }).categories;
  assert.deepEqual(cats(['readonly', 'fast'], ['string']), ['read', 'string', 'fast']);
  assert.deepEqual(cats(['write', 'denyoom'], ['keyspace']), ['keyspace', 'write', 'slow']);
  assert.deepEqual(cats(['admin', 'noscript', 'loading', 'stale']), ['admin', 'slow', 'dangerous']);
  assert.deepEqual(cats(['loading', 'stale', 'fast'], ['admin', 'dangerous']), ['admin', 'fast', 'dangerous']);
  assert.deepEqual(cats([]), ['slow']);
  // Flags come out in COMMAND INFO's order whatever order they are declared in.
  assert.deepEqual(defineCommand({ ...base, keys: [], flags: ['allow_busy', 'noscript', 'fast', 'no_auth'] }).flags, ['noscript', 'fast', 'no_auth', 'allow_busy']);
});

test('the legacy (first, last, step) comes from the key specs as populateCommandLegacyRangeSpec does', () => {
  const legacy = (arity: number, keys: CommandDeclaration['keys']) => {
    const s = defineCommand({ ...base, arity, flags: ['write'], keys });
    return [s.legacyKeys, s.flags.includes('movablekeys')];
  };
  assert.deepEqual(legacy(3, [keyAt(1, ['RW', 'access', 'delete']), keyAt(2, ['OW', 'update'])]), [{ first: 1, last: 2, step: 1 }, false]);
  assert.deepEqual(legacy(-3, [keyAt(1, ['OW', 'update'], { lastkey: -1, keystep: 2 })]), [{ first: 1, last: -1, step: 2 }, false]);
  assert.deepEqual(legacy(-3, [keyAt(1, ['RW', 'access', 'delete']), keyAt(2, ['OW', 'update'], { lastkey: -1 })]), [{ first: 1, last: -1, step: 1 }, false]);
  // A keyword search cannot be a legacy range: the keys are movable (as XREAD's STREAMS).
  assert.deepEqual(legacy(-4, [keyAfter('STREAMS', 1, ['RO', 'access'], { lastkey: -1, keystep: 1, limit: 2 })]), [null, true]);
  // Non-consecutive specs: the first one stays, the rest make the keys movable (as SORT … STORE).
  assert.deepEqual(legacy(-4, [keyAt(1, ['RO', 'access']), keyAt(3, ['OW', 'update'])]), [{ first: 1, last: 1, step: 1 }, true]);
});

test('every spec in the table: categories end in exactly one of @fast/@slow, subcommands named for their container', () => {
  for (const s of commandTable.all) {
    for (const x of [s, ...(s.subcommands ?? [])]) {
      assert.equal(x.categories.includes('fast'), !x.categories.includes('slow'), x.name);
      assert.equal(x.categories.includes('fast'), x.flags.includes('fast'), x.name);
      if (x !== s) assert.ok(x.name.startsWith(`${s.name}|`), x.name);
    }
  }
  // The drift this replaced: CONFIG SET listed only @slow.
  const config = commandTable.lookup('config')!;
  assert.deepEqual(config.subcommands!.find((x) => x.name === 'config|set')!.categories, ['admin', 'slow', 'dangerous']);
});

test('commands newer than Redis 7.0 follow the newer Redis\' command JSON', () => {
  const expect: Record<string, [number, string[], string[], string[]]> = {
    // name: arity, flags, categories, key spec flags (redis 7.4.0 / 8.0 src/commands/*.json)
    hexpire: [-6, ['write', 'denyoom', 'fast'], ['write', 'hash', 'fast'], ['RW', 'update']],
    hpexpireat: [-6, ['write', 'denyoom', 'fast'], ['write', 'hash', 'fast'], ['RW', 'update']],
    httl: [-5, ['readonly', 'fast'], ['read', 'hash', 'fast'], ['RO', 'access']],
    hpexpiretime: [-5, ['readonly', 'fast'], ['read', 'hash', 'fast'], ['RO', 'access']],
    hpersist: [-5, ['write', 'fast'], ['write', 'hash', 'fast'], ['RW', 'update']],
    hsetex: [-6, ['write', 'denyoom', 'fast'], ['write', 'hash', 'fast'], ['RW', 'update']],
    hgetdel: [-5, ['write', 'fast'], ['write', 'hash', 'fast'], ['RW', 'access', 'delete']],
    hgetex: [-5, ['write', 'fast'], ['write', 'hash', 'fast'], ['RW', 'access', 'update']],
  };
  for (const [name, [arity, flags, categories, keyFlags]] of Object.entries(expect)) {
    const s = commandTable.lookup(name)!;
    assert.deepEqual([s.arity, s.flags, s.categories, s.keySpecs.map((k) => k.flags)], [arity, flags, categories, [keyFlags]], name);
    assert.deepEqual(s.legacyKeys, { first: 1, last: 1, step: 1 }, name);
  }
  assert.equal(commandTable.lookup('hsetex')!.since, '8.0.0');
  assert.equal(commandTable.lookup('hgetdel')!.since, '8.0.0');
  assert.equal(commandTable.lookup('hgetex')!.keySpecs[0].notes, 'RW and UPDATE because it changes the TTL');
  assert.equal(commandTable.lookup('httl')!.since, '7.4.0');
  // redis 7.2.0 src/commands/client-no-touch.json
  const noTouch = commandTable.lookup('client|no-touch')!;
  assert.deepEqual(
    [noTouch.arity, noTouch.flags, noTouch.categories, noTouch.since, noTouch.summary],
    [3, ['noscript', 'loading', 'stale'], ['slow', 'connection'], '7.2.0', 'Controls whether commands sent by the client affect the LRU/LFU of accessed keys.'],
  );
});
