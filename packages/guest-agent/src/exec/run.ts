// exec: spawn a process in its own process group, stream stdout/stderr with credit-based backpressure,
// feed stdin, deliver signals, enforce the timeout, and report exit code or signal; optionally on a
// terminal (pty.ts), resizable.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { Fd, GuestRequest, type Channel } from '@capsule/protocol';
import { ptyCommand, resizeLine } from './pty.js';
import { reply, replyError } from '../reply.js';

type ExecRequest = Extract<GuestRequest, { type: 'exec' }>;

/** After the main process exits, a backgrounded grandchild may keep its pipes open. Once nothing has
 * arrived for this long (and we are not blocked on the host), the exit is reported and later output
 * is discarded — the pipes stay open so the grandchild never sees SIGPIPE. */
const PIPE_GRACE_MS = 250;

const foreground = new Set<ChildProcess>();

export function killForegroundExecs(): void {
  for (const child of foreground) killGroup(child, 'SIGKILL');
  foreground.clear();
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

const AGENT_ONLY_ENV = ['UV_THREADPOOL_SIZE'];

function childEnv(extra: Record<string, string> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const key of AGENT_ONLY_ENV) if (!extra || !(key in extra)) delete env[key];
  return env;
}

function badCwd(cwd: string | undefined): string | null {
  if (!cwd) return null;
  try {
    return fs.statSync(cwd).isDirectory() ? null : `cwd ${cwd} is not a directory`;
  } catch {
    return `cwd ${cwd} does not exist`;
  }
}

export function startExec(channel: Channel, request: ExecRequest, done: () => void): void {
  const [file, args] =
    typeof request.command === 'string'
      ? ['/bin/sh', ['-c', request.command]]
      : [request.command[0], request.command.slice(1)];
  const cwdProblem = badCwd(request.cwd);
  if (cwdProblem) {
    replyError(channel, 'BAD_REQUEST', cwdProblem);
    return done();
  }
  const pty = request.pty && !request.background ? request.pty : null;
  const [command, argv] = pty ? ptyCommand(file, args, pty) : [file, args];
  const child = spawn(command, argv, {
    cwd: request.cwd ?? '/root',
    env: pty ? { TERM: 'xterm-256color', ...childEnv(request.env) } : childEnv(request.env),
    detached: true,
    stdio: pty
      ? ['pipe', 'pipe', 'pipe', 'pipe']
      : [
          request.stdin && !request.background ? 'pipe' : 'ignore',
          request.background ? 'ignore' : 'pipe',
          request.background ? 'ignore' : 'pipe',
        ],
  });

  if (request.background) {
    child.once('spawn', () => {
      reply(channel, { type: 'started', pid: child.pid! });
      child.unref();
      done();
    });
    child.once('error', (err) => {
      replyError(channel, 'EXEC_FAILED', spawnFailureMessage(file, err));
      done();
    });
    return;
  }

  foreground.add(child);
  let finished = false;
  let timedOut = false;
  let lastOutputAt = Date.now();
  let exit: { exitCode: number | null; signal: string | null } | null = null;
  const pumpsDone = { [Fd.STDOUT]: false, [Fd.STDERR]: false };

  const finish = (): void => {
    if (finished || !exit) return;
    finished = true;
    clearTimeout(timer);
    clearInterval(graceTimer);
    foreground.delete(child);
    reply(channel, { type: 'exit', exitCode: exit.exitCode, signal: exit.signal, timedOut });
    done();
  };

  const pump = async (stream: NodeJS.ReadableStream, fd: typeof Fd.STDOUT | typeof Fd.STDERR): Promise<void> => {
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        if (finished) continue; // detached after the exit grace: discard, keep the pipe open
        lastOutputAt = Date.now();
        await channel.sendData(fd, chunk);
      }
    } catch {
      // channel aborted (host gone) — the process group is killed by the abort handler
    }
    pumpsDone[fd] = true;
    if (pumpsDone[Fd.STDOUT] && pumpsDone[Fd.STDERR]) finish();
  };

  let graceTimer: NodeJS.Timeout | undefined;
  const timer = request.timeoutMs
    ? setTimeout(() => {
        timedOut = true;
        killGroup(child, 'SIGKILL');
      }, request.timeoutMs)
    : undefined;

  child.once('spawn', () => {
    reply(channel, { type: 'started', pid: child.pid! });
    void pump(child.stdout!, Fd.STDOUT);
    void pump(child.stderr!, Fd.STDERR);
  });
  child.once('error', (err) => {
    // spawn failed: report the way a shell would (127 not found, 126 not executable)
    const code = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 127 : 126;
    foreground.delete(child);
    void channel.sendData(Fd.STDERR, Buffer.from(`${spawnFailureMessage(file, err)}\n`)).catch(() => undefined);
    exit = { exitCode: code, signal: null };
    pumpsDone[Fd.STDOUT] = pumpsDone[Fd.STDERR] = true;
    finish();
  });
  child.once('exit', (exitCode, signal) => {
    exit = { exitCode, signal };
    if (pumpsDone[Fd.STDOUT] && pumpsDone[Fd.STDERR]) return finish();
    // The grace runs from the exit (the output may still sit unread in the pipe: a busy event loop can
    // deliver the exit first), and only after a poll phase has passed: a timer tick can come before
    // the I/O of the same loop turn, and finishing then would drop output the process did write.
    lastOutputAt = Math.max(lastOutputAt, Date.now());
    let ticks = 0;
    graceTimer = setInterval(() => {
      if (++ticks >= 2 && !channel.waitingForCredit && Date.now() - lastOutputAt >= PIPE_GRACE_MS) finish();
    }, 50);
  });

  if (child.stdin) {
    child.stdin.on('error', () => undefined); // EPIPE when the process exits without reading
    const stdin = child.stdin;
    channel.events.data = (fd, chunk) => {
      if (fd !== Fd.STDIN || stdin.destroyed) return undefined;
      return new Promise<void>((resolve) => stdin.write(chunk, () => resolve()));
    };
    channel.events.eof = (fd) => {
      if (fd === Fd.STDIN) stdin.end();
    };
  }
  const control = pty ? (child.stdio[3] as NodeJS.WritableStream | null) : null;
  control?.on('error', () => undefined);
  channel.events.message = (raw) => {
    const message = GuestRequest.safeParse(raw);
    if (!message.success) return;
    // with a pty the helper passes the signal on to the terminal's session
    if (message.data.type === 'signal') killGroup(child, message.data.signal);
    else if (message.data.type === 'resize' && control) control.write(resizeLine(message.data));
  };
  channel.events.abort = () => {
    killGroup(child, 'SIGKILL');
    foreground.delete(child);
  };
}

function spawnFailureMessage(file: string, err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return `capsule: ${file}: command not found`;
  if (code === 'EACCES') return `capsule: ${file}: permission denied`;
  return `capsule: ${file}: ${err.message}`;
}
