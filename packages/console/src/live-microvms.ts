// The caller's MicroVMs, kept current: one list, then the event stream (GET /v1/events) applies each change as
// it happens. If the stream cannot be held, the list is polled every 5 s and the stream retried.
import type { Capsule, MicroVMInfo } from '@capsule/sdk';
import { useEffect, useState } from 'preact/hooks';

const POLL_MS = 5000;

export interface LiveMicroVMs {
  microvms: Map<string, MicroVMInfo>;
  /** 'live' (the event stream), 'polling' (its fallback) or 'connecting'. */
  mode: 'connecting' | 'live' | 'polling';
  error: unknown;
}

async function listAll(capsule: Capsule): Promise<Map<string, MicroVMInfo>> {
  const all = new Map<string, MicroVMInfo>();
  let nextToken: string | undefined;
  do {
    const page = await capsule.microvms.list({ nextToken });
    for (const vm of page.microvms) all.set(vm.id, vm.info);
    nextToken = page.nextToken ?? undefined;
  } while (nextToken);
  return all;
}

/**
 * Follow the caller's MicroVM changes until `signal` aborts: `changed` for each one, `refresh(true)` once the
 * stream is open (so nothing falls between a list and the stream), and while it cannot be held `refresh(false)`
 * every 5 s with the stream retried.
 */
export async function followMicroVMs(
  capsule: Capsule,
  signal: AbortSignal,
  handlers: { changed: (vm: MicroVMInfo) => void | Promise<void>; refresh: (live: boolean) => Promise<void> },
): Promise<void> {
  while (!signal.aborted) {
    try {
      for await (const vm of capsule.microvms.watch({ signal, onReady: () => void handlers.refresh(true) }))
        await handlers.changed(vm);
    } catch {
      // the stream failed: poll until it can be held again
    }
    if (signal.aborted) return;
    await handlers.refresh(false);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, POLL_MS);
      signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
  }
}

export function useLiveMicroVMs(capsule: Capsule): LiveMicroVMs {
  const [state, setState] = useState<LiveMicroVMs>({ microvms: new Map(), mode: 'connecting', error: null });
  useEffect(() => {
    const stop = new AbortController();
    const refresh = async (live: boolean): Promise<void> => {
      const mode = live ? 'live' : 'polling';
      try {
        const microvms = await listAll(capsule);
        if (!stop.signal.aborted) setState({ microvms, mode, error: null });
      } catch (error) {
        if (!stop.signal.aborted) setState((s) => ({ ...s, mode, error }));
      }
    };
    const changed = (vm: MicroVMInfo): void =>
      setState((s) => {
        const microvms = new Map(s.microvms);
        microvms.set(vm.id, vm);
        return { ...s, microvms };
      });
    void followMicroVMs(capsule, stop.signal, { changed, refresh });
    return () => stop.abort();
  }, [capsule]);
  return state;
}
