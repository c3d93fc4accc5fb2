// The overview's reading of /metrics: series summed over labels, and quantiles of what happened between two
// scrapes, estimated within buckets as Prometheus's histogram_quantile does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { counter, parseMetrics, quantileBetween } from './prometheus.js';

const scrape = (counts: [number, number, number, number]): string =>
  [
    '# HELP capsule_microvm_resume_seconds resume until RUNNING',
    '# TYPE capsule_microvm_resume_seconds histogram',
    `capsule_microvm_resume_seconds_bucket{le="0.1"} ${counts[0]}`,
    `capsule_microvm_resume_seconds_bucket{le="0.5"} ${counts[1]}`,
    `capsule_microvm_resume_seconds_bucket{le="1"} ${counts[2]}`,
    `capsule_microvm_resume_seconds_bucket{le="+Inf"} ${counts[3]}`,
    `capsule_microvm_resume_seconds_count ${counts[3]}`,
    'capsule_microvm_launch_seconds_count{launched_from="snapshot"} 3',
    'capsule_microvm_launch_seconds_count{launched_from="pool"} 4',
  ].join('\n');

test('a series is summed over its labels', () => {
  assert.equal(counter(parseMetrics(scrape([0, 0, 0, 0])), 'capsule_microvm_launch_seconds_count'), 7);
});

test('quantiles come from the buckets filled between two scrapes', () => {
  const before = parseMetrics(scrape([5, 5, 5, 5]));
  // 10 resumes since: 2 under 0.1 s, 8 between 0.1 and 0.5 s
  const after = parseMetrics(scrape([7, 15, 15, 15]));
  const p50 = quantileBetween(before, after, 'capsule_microvm_resume_seconds', 0.5)!;
  assert.ok(Math.abs(p50 - (0.1 + (0.4 * 3) / 8)) < 1e-9, String(p50));
  assert.equal(quantileBetween(after, after, 'capsule_microvm_resume_seconds', 0.5), null, 'nothing happened');
  // past the last finite bucket: its bound
  const slow = parseMetrics(scrape([7, 15, 15, 25]));
  assert.equal(quantileBetween(after, slow, 'capsule_microvm_resume_seconds', 0.95), 1);
});
