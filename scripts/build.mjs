// Bundles: the guest agent (one file for the guest's Node 18) and the CLI (server included) for Node 20.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
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
// The agent's fix-up addon (packages/guest-agent/native/fixups.c), beside the bundle: the initramfs carries both.
const gccFlags = ['-O2', '-Wall', '-Wextra', '-Werror', '-shared', '-fPIC', '-s'];
try {
  execFileSync(
    'gcc',
    [...gccFlags, '-I', 'node_modules/node-api-headers/include', '-o', 'packages/guest-agent/dist/fixups.node'].concat(
      'packages/guest-agent/native/fixups.c',
    ),
    { cwd: root, stdio: 'inherit' },
  );
} catch (err) {
  throw new Error(`building the agent's fix-up addon failed (the setup script installs gcc): ${err.message}`);
}
// The jail's launcher (packages/server/native/capsule-jail.c): run as root around every QEMU.
fs.mkdirSync(path.join(root, 'packages/server/dist'), { recursive: true });
try {
  execFileSync(
    'gcc',
    [
      '-O2',
      '-Wall',
      '-Wextra',
      '-Werror',
      '-s',
      '-o',
      'packages/server/dist/capsule-jail',
      'packages/server/native/capsule-jail.c',
    ],
    { cwd: root, stdio: 'inherit' },
  );
} catch (err) {
  throw new Error(`building the jail launcher failed (the setup script installs gcc): ${err.message}`);
}
await build({
  ...common,
  entryPoints: ['packages/cli/src/main.ts'],
  outfile: 'packages/cli/dist/capsule.mjs',
  target: 'node20',
  format: 'esm',
  external: ['better-sqlite3'],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
// The web console (packages/console): static files that `capsule serve` serves under /console.
execFileSync('npx', ['vite', 'build', '--logLevel', 'warn'], {
  cwd: path.join(root, 'packages/console'),
  stdio: 'inherit',
});
