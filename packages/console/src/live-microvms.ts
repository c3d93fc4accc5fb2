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

export function useLiveMicroVMs(capsule: Capsule): LiveMicroVMs {
  const [state, setState] = useState<LiveMicroVMs>({ microvms: new Map(), mode: 'connecting', error: null });
  useEffect(() => {
    const stop = new AbortController();
    let pollTimer: ReturnType<typeof setTimeout> | undefined;
    const refresh = async (mode: LiveMicroVMs['mode']): Promise<void> => {
      try {
        const microvms = await listAll(capsule);
        if (!stop.signal.aborted) setState({ microvms, mode, error: null });
      } catch (error) {
        if (!stop.signal.aborted) setState((s) => ({ ...s, mode, error }));
      }
    };
    const follow = async (): Promise<void> => {
      while (!stop.signal.aborted) {
        try {
          // listed once the stream is open, so no change falls between the list and the stream
          for await (const vm of capsule.microvms.watch({ signal: stop.signal, onReady: () => void refresh('live') })) {
            setState((s) => {
              const microvms = new Map(s.microvms);
              microvms.set(vm.id, vm);
              return { ...s, microvms };
            });
          }
        } catch {
          // the stream failed: poll until it can be held again
        }
        if (stop.signal.aborted) return;
        await refresh('polling');
        await new Promise<void>((resolve) => (pollTimer = setTimeout(resolve, POLL_MS)));
      }
    };
    void follow();
    return () => {
      stop.abort();
      clearTimeout(pollTimer);
    };
  }, [capsule]);
  return state;
}
