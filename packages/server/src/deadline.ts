// A host-side deadline over work that depends on a guest: the host's own timer, which fires whatever
// the guest does or does not send (a socket option on an agent tunnel never would).

/** `work`'s outcome, or a rejection with `onExpiry()` once `ms` have passed; the loser's outcome is ignored. */
export function withDeadline<T>(work: Promise<T>, ms: number, onExpiry: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(onExpiry()), Math.max(0, ms));
  });
  work.catch(() => undefined); // it may settle after the deadline: not an unhandled rejection
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
