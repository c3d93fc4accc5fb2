// The web console (packages/console, built by Vite to static files) under /console, from this process: no
// second server. Every answer carries a strict Content-Security-Policy (scripts only from here, no inline
// script; inline styles are allowed because xterm.js and uPlot set them), X-Frame-Options DENY and
// Referrer-Policy no-referrer (hono's secureHeaders). Hashed assets are cached for a year; index.html is
// revalidated every time. The console holds the API key in sessionStorage and sends it as a header: it sets
// no cookie.
import fs from 'node:fs';
import path from 'node:path';
import { serveStatic } from '@hono/node-server/serve-static';
import type { MiddlewareHandler } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import type { ApiApp } from './app.js';

const consoleHeaders = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'self'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'", "'unsafe-inline'"],
    imgSrc: ["'self'", 'data:', 'blob:'],
    connectSrc: ["'self'"],
    fontSrc: ["'self'"],
    objectSrc: ["'none'"],
    baseUri: ["'none'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
  },
  xFrameOptions: 'DENY',
  referrerPolicy: 'no-referrer',
  strictTransportSecurity: false,
});

export function consoleRoutes(app: ApiApp, consoleDir: string): void {
  app.use('/console', consoleHeaders);
  app.use('/console/*', consoleHeaders);
  app.get('/console', (c) => c.redirect('/console/', 301));
  // made on the first request: the built files may appear after the server starts (and serveStatic complains
  // at once about a root that is not there yet)
  let files: MiddlewareHandler | null = null;
  app.get('/console/*', async (c, next) => {
    if (!fs.existsSync(consoleDir))
      throw new CapsuleError(
        ErrorCode.CONSOLE_UNAVAILABLE,
        `the console is not built (${consoleDir} is missing): run \`npm run build\` (the setup script does)`,
      );
    files ??= serveStatic({ root: consoleDir, rewriteRequestPath: (p) => p.slice('/console'.length) });
    const relative = c.req.path.slice('/console'.length);
    if (relative.startsWith('/assets/') && fs.existsSync(path.join(consoleDir, path.normalize(relative))))
      c.header('Cache-Control', 'public, max-age=31536000, immutable');
    else if (relative === '/' || relative === '/index.html') c.header('Cache-Control', 'no-cache, must-revalidate');
    return files(c, next);
  });
}
