// The Dockerfile subset an image may use: FROM <runtime>, RUN, COPY, ADD (files in the zip), ENV,
// WORKDIR, USER, EXPOSE, CMD, ENTRYPOINT — shell and exec (JSON array) forms, `\` continuations and
// comments. Anything else is rejected with its line number, before any VM is started.
import path from 'node:path/posix';
import { BuildSpecError, DEFAULT_USER, DEFAULT_WORKDIR, type BuildPlan, type BuildStep } from './build-plan.js';

const FILE = 'Dockerfile';
const SUPPORTED = new Set(['FROM', 'RUN', 'COPY', 'ADD', 'ENV', 'WORKDIR', 'USER', 'EXPOSE', 'CMD', 'ENTRYPOINT']);
const MAX_INSTRUCTIONS = 500;

interface Instruction {
  line: number;
  keyword: string;
  args: string;
}

/** Logical instructions: continuation lines joined, comments and blank lines dropped. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let current = lines[i];
    if (/^\s*#/.test(current) || current.trim() === '') continue;
    while (/\\\s*$/.test(current) && i + 1 < lines.length) {
      current = current.replace(/\\\s*$/, '');
      i++;
      if (/^\s*#/.test(lines[i])) continue; // comment lines inside a continuation are dropped, as Docker does
      current += ' ' + lines[i].trim();
    }
    const match = /^\s*([A-Za-z]+)(?:\s+([\s\S]*))?$/.exec(current);
    if (!match) throw new BuildSpecError(FILE, start + 1, `cannot read "${current.trim().slice(0, 60)}"`);
    out.push({ line: start + 1, keyword: match[1].toUpperCase(), args: (match[2] ?? '').trim() });
    if (out.length > MAX_INSTRUCTIONS)
      throw new BuildSpecError(FILE, start + 1, `more than ${MAX_INSTRUCTIONS} instructions`);
  }
  return out;
}

/** Exec form (a JSON array of strings) or null for the shell form. */
function execForm(ins: Instruction): string[] | null {
  if (!ins.args.startsWith('[')) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(ins.args);
  } catch {
    throw new BuildSpecError(FILE, ins.line, `${ins.keyword}: the exec form must be a JSON array of strings`);
  }
  if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((p) => typeof p === 'string')) {
    throw new BuildSpecError(FILE, ins.line, `${ins.keyword}: the exec form must be a non-empty JSON array of strings`);
  }
  return parsed as string[];
}

const command = (ins: Instruction): string[] => {
  if (!ins.args) throw new BuildSpecError(FILE, ins.line, `${ins.keyword} needs a command`);
  return execForm(ins) ?? ['/bin/sh', '-c', ins.args];
};

/** ENV k=v k2="v 2" or the legacy ENV k v. */
function envPairs(ins: Instruction): Array<[string, string]> {
  const legacy = /^([A-Za-z_][A-Za-z0-9_]*)\s+([^=\s][\s\S]*)$/.exec(ins.args);
  if (legacy && !ins.args.split(/\s+/)[0].includes('=')) return [[legacy[1], legacy[2]]];
  const pairs: Array<[string, string]> = [];
  const re = /([A-Za-z_][A-Za-z0-9_]*)=("((?:[^"\\]|\\.)*)"|'([^']*)'|(\S*))\s*/y;
  let at = 0;
  while (at < ins.args.length) {
    re.lastIndex = at;
    const m = re.exec(ins.args);
    if (!m)
      throw new BuildSpecError(FILE, ins.line, `ENV: cannot read "${ins.args.slice(at, at + 40)}" (use KEY=value)`);
    pairs.push([m[1], m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : (m[4] ?? m[5] ?? '')]);
    at = re.lastIndex;
  }
  if (pairs.length === 0) throw new BuildSpecError(FILE, ins.line, 'ENV needs KEY=value');
  return pairs;
}

/** A path inside the zip: relative, normalised, never above the zip's root. */
function zipPath(ins: Instruction, raw: string): string {
  if (/^[a-z]+:\/\//i.test(raw))
    throw new BuildSpecError(
      FILE,
      ins.line,
      `${ins.keyword}: URLs are not supported (${raw}); put the file in the zip`,
    );
  const normal = path.normalize(raw.replace(/^\.\//, ''));
  if (raw.startsWith('/') || normal === '..' || normal.startsWith('../'))
    throw new BuildSpecError(FILE, ins.line, `${ins.keyword}: ${raw} is outside the zip`);
  return normal === '.' ? '.' : normal.replace(/\/$/, '');
}

/** `baseRuntime`, when given, is built on whatever FROM names (the AWS API's baseImageArn decides the base). */
export function parseDockerfile(text: string, runtimes: readonly string[], baseRuntime?: string): BuildPlan {
  const all = instructions(text);
  if (all.length === 0 || all[0].keyword !== 'FROM')
    throw new BuildSpecError(FILE, all[0]?.line ?? 1, 'the first instruction must be FROM <runtime>');
  const env: Record<string, string> = {};
  let workdir = DEFAULT_WORKDIR;
  let user = DEFAULT_USER;
  let cmd: string[] | null = null;
  let entrypoint: { argv: string[]; shell: boolean } | null = null;
  let port: number | null = null;
  let runtime = '';
  const steps: BuildStep[] = [];
  const context = (ins: Instruction) => ({ line: ins.line, env: { ...env }, workdir, user });
  for (const ins of all) {
    if (!SUPPORTED.has(ins.keyword))
      throw new BuildSpecError(
        FILE,
        ins.line,
        `${ins.keyword} is not supported (supported: ${[...SUPPORTED].join(', ')})`,
      );
    switch (ins.keyword) {
      case 'FROM': {
        if (runtime) throw new BuildSpecError(FILE, ins.line, 'only one FROM (multi-stage builds are not supported)');
        const [name, ...rest] = ins.args.split(/\s+/);
        if (!name || rest.length > 0) throw new BuildSpecError(FILE, ins.line, 'FROM takes one runtime name');
        runtime = baseRuntime ?? name.replace(/^capsule\//, '').replace(/:latest$/, '');
        if (!runtimes.includes(runtime))
          throw new BuildSpecError(FILE, ins.line, `unknown runtime "${name}" (available: ${runtimes.join(', ')})`);
        break;
      }
      case 'RUN':
        steps.push({ kind: 'run', argv: command(ins), ...context(ins) });
        break;
      case 'COPY':
      case 'ADD': {
        const exec = execForm(ins);
        const words = exec ?? ins.args.split(/\s+/).filter(Boolean);
        const flag = words.find((w) => w.startsWith('--'));
        if (flag) throw new BuildSpecError(FILE, ins.line, `${ins.keyword} ${flag.split('=')[0]} is not supported`);
        if (words.length < 2)
          throw new BuildSpecError(FILE, ins.line, `${ins.keyword} needs at least one source and a destination`);
        const dest = words[words.length - 1];
        // a trailing slash, `.`, or several sources make the destination a directory (Docker's rule)
        const intoDir = dest.endsWith('/') || dest === '.' || words.length > 2;
        steps.push({
          kind: 'copy',
          sources: words.slice(0, -1).map((w) => zipPath(ins, w)),
          dest: path.resolve(workdir, dest) + (intoDir ? '/' : ''),
          ...context(ins),
        });
        break;
      }
      case 'ENV':
        for (const [k, v] of envPairs(ins)) env[k] = v;
        break;
      case 'WORKDIR':
        if (!ins.args) throw new BuildSpecError(FILE, ins.line, 'WORKDIR needs a path');
        workdir = path.resolve(workdir, ins.args);
        break;
      case 'USER':
        if (!/^[a-z_][a-z0-9_-]{0,31}(:[a-z_][a-z0-9_-]{0,31})?$|^\d+(:\d+)?$/.test(ins.args))
          throw new BuildSpecError(FILE, ins.line, `USER: "${ins.args}" is not a user name or uid`);
        user = ins.args;
        break;
      case 'EXPOSE': {
        const first = /^(\d{1,5})(\/tcp)?(\s|$)/.exec(ins.args);
        if (!first || Number(first[1]) < 1 || Number(first[1]) > 65535)
          throw new BuildSpecError(FILE, ins.line, `EXPOSE: "${ins.args}" is not a TCP port`);
        port ??= Number(first[1]);
        break;
      }
      case 'CMD':
        cmd = command(ins);
        break;
      case 'ENTRYPOINT': {
        const exec = execForm(ins);
        entrypoint = exec ? { argv: exec, shell: false } : { argv: command(ins), shell: true };
        break;
      }
    }
  }
  // Docker's rule: an exec-form ENTRYPOINT takes CMD as arguments; a shell-form one ignores CMD
  const start = entrypoint ? (entrypoint.shell ? entrypoint.argv : [...entrypoint.argv, ...(cmd ?? [])]) : cmd;
  return { runtime, steps, env, workdir, user, start, port, memoryMib: null, vcpuCount: null };
}
