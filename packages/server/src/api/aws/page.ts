// AWS pagination over a list held in memory: `maxResults` (1-50, default 50) and an opaque `nextToken`,
// here the sort key of the last item given.
import { z } from 'zod';
import { validated } from './wire.js';

const MAX_RESULTS = 50;

/** The request's `maxResults`, checked; 50 when absent. */
export function maxResultsOf(query: URLSearchParams): number {
  const maxResults = z.coerce.number().int().min(1).max(MAX_RESULTS).optional();
  return validated(maxResults, query.get('maxResults') ?? undefined, 'maxResults') ?? MAX_RESULTS;
}

/** `items` (always present) after `nextToken`, at most `maxResults` of them; the last one's key as the next token. */
export function page<T>(
  all: T[],
  keyOf: (item: T) => string,
  query: URLSearchParams,
): { items: T[]; nextToken?: string } {
  const limit = maxResultsOf(query);
  const after = query.get('nextToken');
  const sorted = [...all].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : 1));
  const rest = after === null ? sorted : sorted.filter((item) => keyOf(item) > after);
  const items = rest.slice(0, limit);
  return rest.length > limit ? { items, nextToken: keyOf(items[items.length - 1]) } : { items };
}
