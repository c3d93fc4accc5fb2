// One way to say what failed validation, at every end (server, agent, SDK, build specs).
import type { z } from 'zod';

/** Zod issues as one line: `where: what; …` (`whole` names an issue about the value itself). */
export function formatIssues(error: z.ZodError, whole = 'body'): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : whole}: ${i.message}`).join('; ');
}
