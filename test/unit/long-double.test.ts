/** The x87 long double emulation behind INCRBYFLOAT: parsing as strtold, one rounding per add, %.17Lf. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { add, formatHuman, parseLongDouble, type ExtResult } from '../../src/commands/long-double.js';

function sum(...xs: string[]): string {
  let acc: ExtResult = { neg: false, m: 0n, e: 0 };
  for (const x of xs) {
    const v = parseLongDouble(x);
    assert.notEqual(v, null, x);
    acc = add(acc, v!);
  }
  return formatHuman(acc);
}

test('sums print as Redis prints them on x86-64 (values taken from redis-server 7.0)', () => {
  assert.equal(sum('10.50', '0.1'), '10.6');
  assert.equal(sum('10.50', '0.1', '-5'), '5.6');
  assert.equal(sum('5.0e3', '2.0e2'), '5200');
  assert.equal(sum('1e-20'), '0');
  assert.equal(sum('1e20'), '100000000000000000000');
  assert.equal(sum('0x10', '0x1.8p1'), '19');
  assert.equal(sum('3.0000000000000000001', '0.1', '0.2'), '3.3');
  assert.equal(sum('123456789.123456789'), '123456789.12345678899873747');
  assert.equal(sum('0.000000000000000015'), '0.00000000000000002');
  assert.equal(sum('0.000000000000000005'), '0');
  assert.equal(sum('9223372036854775807', '1'), '9223372036854775808');
  assert.equal(sum('1.23456789012345678901234567890'), '1.23456789012345679');
  assert.equal(sum('-0'), '0');
  assert.equal(sum('1e-4950'), '0');
});

test('what string2ld refuses', () => {
  for (const bad of ['', ' 1', '1 ', 'abc', 'nan', '-nan', '1e', '.', '0x', '0x1p', '1e4933', '-1e4933', '1e-5000', '+-1', '1..2']) {
    assert.equal(parseLongDouble(bad), null, JSON.stringify(bad));
  }
  assert.equal(parseLongDouble('x'.repeat(5120)), null);
  assert.deepEqual(parseLongDouble('inf'), { inf: true, neg: false });
  assert.deepEqual(parseLongDouble('-Infinity'), { inf: true, neg: true });
  assert.notEqual(parseLongDouble('0e99999999'), null);
});

test('overflow and NaN', () => {
  const max = parseLongDouble('1.18973149535723176502e4932')!;
  assert.equal(formatHuman(add(max, max)), 'inf');
  assert.equal(add(parseLongDouble('inf')!, parseLongDouble('-inf')!), 'nan');
});
