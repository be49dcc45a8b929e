/** The strict Prometheus text parser the metrics tests rely on accepts valid text and rejects the rest. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePrometheusText, sampleValue } from '../helpers/prom-text.js';

const VALID = `# HELP x_total Things.
# TYPE x_total counter
x_total{a="1",b="q\\"uote\\\\back\\nline"} 3
x_total{a="2"} 4 1700000000000
# TYPE h histogram
h_bucket{le="0.1"} 1
h_bucket{le="1"} 2
h_bucket{le="+Inf"} 3
h_sum 1.5
h_count 3
# a comment
g NaN
`;

test('parses values, labels with escapes, timestamps and histograms', () => {
  const m = parsePrometheusText(VALID);
  assert.equal(m.get('x_total')?.type, 'counter');
  assert.equal(m.get('x_total')?.help, 'Things.');
  assert.equal(sampleValue(m, 'x_total', { a: '1', b: 'q"uote\\back\nline' }), 3);
  assert.equal(sampleValue(m, 'x_total', { a: '2' }), 4);
  assert.equal(sampleValue(m, 'h_count'), 3);
  assert.equal(m.get('g')?.type, 'untyped');
  assert.ok(Number.isNaN(sampleValue(m, 'g')));
});

test('rejects what a Prometheus server would reject', () => {
  const bad: [string, RegExp][] = [
    ['x 1', /end with a line feed/],
    ['x{a="1} 1\n', /unterminated|expected/],
    ['x{a="\\t"} 1\n', /bad escape/],
    ['x{1a="v"} 1\n', /bad label name/],
    ['x{a="1",a="2"} 1\n', /twice/],
    ['x one\n', /bad value/],
    ['# TYPE x counter\nx -1\n', /counter x is -1/],
    ['# TYPE x widget\n', /unknown type/],
    ['x 1\ny 1\nx 2\n', /not grouped together/],
    ['x{a="1"} 1\nx{a="1"} 2\n', /duplicate sample/],
    ['x 1\n# TYPE x gauge\n', /after its samples/],
    ['# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_count 1\n', /not cumulative/],
    ['# TYPE h histogram\nh_bucket{le="1"} 1\nh_count 1\n', /no \+Inf bucket/],
    ['# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 3\n', /_count 3 != \+Inf bucket 2/],
  ];
  for (const [text, why] of bad) assert.throws(() => parsePrometheusText(text), why, JSON.stringify(text));
});
