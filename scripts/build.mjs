// Bundles: the guest agent (one file for the guest's Node 18) and the CLI (server included) for Node 20.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const common = { bundle: true, platform: 'node', sourcemap: false, logLevel: 'warning', absWorkingDir: root };

await build({
  ...common,
  entryPoints: ['packages/guest-agent/src/main.ts'],
  outfile: 'packages/guest-agent/dist/agent.js',
  target: 'node18',
  format: 'cjs',
  minify: true,
});
await build({
  ...common,
  entryPoints: ['packages/cli/src/main.ts'],
  outfile: 'packages/cli/dist/capsule.mjs',
  target: 'node20',
  format: 'esm',
  external: ['better-sqlite3'],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
