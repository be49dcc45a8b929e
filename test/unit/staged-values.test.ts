import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stagedValueKey } from '../../src/commands/staged-values.js';

const b = (...a: string[]): Buffer[] => a.map((s) => Buffer.from(s));

test('only the value arguments of SET, SETNX, SETEX, PSETEX, HSET, HMSET and HSETNX may be staged, under their key or field', () => {
  const key = (...a: string[]): string | null => stagedValueKey(b(...a))?.toString() ?? null;
  assert.equal(key('SET', 'k'), 'k');
  assert.equal(key('set', 'k'), 'k');
  assert.equal(key('SET'), null);
  assert.equal(key('SET', 'k', 'v', 'GET'), null, 'options are never staged');
  assert.equal(key('SETNX', 'k'), 'k');
  assert.equal(key('SETEX', 'k', '10'), 'k');
  assert.equal(key('SETEX', 'k'), null, 'the seconds argument is not a value');
  assert.equal(key('PSETEX', 'k', '10'), 'k');
  assert.equal(key('HSET', 'h', 'f'), 'f');
  assert.equal(key('HSET', 'h', 'f', 'v', 'g'), 'g');
  assert.equal(key('HSET', 'h'), null, 'field names are not values');
  assert.equal(key('HSET', 'h', 'f', 'v'), null);
  assert.equal(key('HMSET', 'h', 'f'), 'f');
  assert.equal(key('HSETNX', 'h', 'f'), 'f');
  assert.equal(key('HSETNX', 'h', 'f', 'v'), null);
  for (const cmd of ['APPEND', 'SETRANGE', 'GETSET', 'MSET', 'EVAL', 'LCS', 'RESTORE', 'PUBLISH']) assert.equal(key(cmd, 'k'), null, cmd);
});
