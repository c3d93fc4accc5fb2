// The console is built to static files (dist/) that `capsule serve` serves under /console: hashed assets, no
// inline script (the server's Content-Security-Policy allows none). `ws` is the SDK's Node-only WebSocket
// fallback; browsers have their own, so it is left out of the bundle.
import preact from '@preact/preset-vite';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  root: here('.'),
  base: '/console/',
  plugins: [preact()],
  resolve: {
    alias: {
      '@capsule/sdk': here('../sdk/src/index.ts'),
      '@capsule/protocol': here('../protocol/src/index.ts'),
      ws: here('src/no-ws.ts'),
    },
  },
  build: {
    outDir: here('dist'),
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1024,
  },
});
