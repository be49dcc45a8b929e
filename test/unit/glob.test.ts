import { test } from 'node:test';
import assert from 'node:assert/strict';
import { globMatch } from '../../src/commands/glob.js';

const m = (p: string, s: string): boolean => globMatch(Buffer.from(p), Buffer.from(s));

test('glob: Redis stringmatchlen rules', () => {
  assert.equal(m('*', ''), true);
  assert.equal(m('*', 'anything'), true);
  assert.equal(m('h?llo', 'hello'), true);
  assert.equal(m('h?llo', 'hllo'), false);
  assert.equal(m('h*llo', 'heeeello'), true);
  assert.equal(m('h[ae]llo', 'hallo'), true);
  assert.equal(m('h[ae]llo', 'hillo'), false);
  assert.equal(m('h[^e]llo', 'hallo'), true);
  assert.equal(m('h[^e]llo', 'hello'), false);
  assert.equal(m('h[a-b]llo', 'hbllo'), true);
  assert.equal(m('h[b-a]llo', 'hallo'), true, 'reversed ranges are swapped');
  assert.equal(m('h\\*llo', 'h*llo'), true);
  assert.equal(m('h\\*llo', 'hello'), false);
  assert.equal(m('k\\[x\\]', 'k[x]'), true);
  assert.equal(m('a*b*c', 'aXXbYYc'), true);
  assert.equal(m('a*b*c', 'aXXbYY'), false);
  assert.equal(m('abc', 'abcd'), false);
  assert.equal(m('abc*', 'abc'), true);
  assert.equal(m('[abc', 'a'), true, 'an unclosed class matches as Redis does');
  assert.equal(globMatch(Buffer.from([0x2a, 0]), Buffer.from([1, 2, 0])), true, 'binary bytes');
  assert.equal(m('*'.repeat(50) + 'x', 'a'.repeat(60)), false, 'many stars end quickly');
});
