// Just enough of the Prometheus text format for the overview: a metric's samples summed over its labels, and a
// histogram's buckets, from which a quantile is estimated as Prometheus's histogram_quantile does (linearly within
// the bucket the rank falls in).

export type Samples = Map<string, number>;

/** `name{labels} value` lines → the value per series name (labels summed), `le` kept for buckets. */
export function parseMetrics(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const le = m[3] ? /(?:^|,)le="([^"]*)"/.exec(m[3])?.[1] : undefined;
    const key = le !== undefined ? `${m[1]}{le=${le}}` : m[1];
    out.set(key, (out.get(key) ?? 0) + Number(m[4]));
  }
  return out;
}

/** The buckets of histogram `name` as [upper bound, cumulative count], ascending. */
function buckets(samples: Samples, name: string): Array<[number, number]> {
  const list: Array<[number, number]> = [];
  for (const [key, value] of samples) {
    const m = new RegExp(`^${name}_bucket\\{le=(.+)\\}$`).exec(key);
    if (m) list.push([m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]), value]);
  }
  return list.sort((a, b) => a[0] - b[0]);
}

/**
 * The q-quantile of histogram `name` over what happened between `before` and `after` (two scrapes), in the
 * histogram's unit; null when nothing happened in between.
 */
export function quantileBetween(before: Samples | null, after: Samples, name: string, q: number): number | null {
  const now = buckets(after, name);
  const then = new Map(before ? buckets(before, name) : []);
  const delta = now.map(([le, count]) => [le, count - (then.get(le) ?? 0)] as [number, number]);
  const total = delta.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, count] of delta) {
    if (count >= rank) {
      if (!Number.isFinite(le)) return lower;
      return lower + ((le - lower) * (rank - below)) / Math.max(count - below, 1e-9);
    }
    lower = le;
    below = count;
  }
  return lower;
}

export function counter(samples: Samples, name: string): number {
  return samples.get(name) ?? 0;
}
