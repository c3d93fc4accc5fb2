// Hash routes (#/microvms/mvm-1/terminal): the console is static files, so the server never sees a route.
import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { page: 'microvms' }
  | { page: 'microvm'; id: string; tab: MicroVMTab }
  | { page: 'images' }
  | { page: 'image'; name: string }
  | { page: 'overview' }
  | { page: 'admin' };

export const MICROVM_TABS = ['details', 'terminal', 'files', 'logs', 'network'] as const;
export type MicroVMTab = (typeof MICROVM_TABS)[number];

function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'microvms' && parts[1]) {
    const tab = MICROVM_TABS.find((t) => t === parts[2]) ?? 'details';
    return { page: 'microvm', id: parts[1], tab };
  }
  if (parts[0] === 'images' && parts[1]) return { page: 'image', name: parts[1] };
  if (parts[0] === 'images') return { page: 'images' };
  if (parts[0] === 'overview') return { page: 'overview' };
  if (parts[0] === 'admin') return { page: 'admin' };
  return { page: 'microvms' };
}

export function href(...parts: string[]): string {
  return `#/${parts.map(encodeURIComponent).join('/')}`;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const changed = (): void => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return route;
}
