// A terminal in the MicroVM: xterm.js over the PTY WebSocket (GET /v1/microvms/{id}/shell), sized to its box and
// resized with it. Copy is the selection (xterm copies on the usual keys); paste goes to the shell as typed.
import type { MicroVM, Session } from '@capsule/sdk';
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { useEffect, useRef, useState } from 'preact/hooks';
import { describeError } from '../components.js';

export function TerminalTab({ vm }: { vm: MicroVM }) {
  const box = useRef<HTMLDivElement>(null);
  const [status, setStatus] = useState('connecting…');
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    const dark = document.documentElement.dataset.theme === 'dark';
    const term = new Terminal({
      cursorBlink: true,
      fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace',
      fontSize: 14,
      theme: dark
        ? { background: '#111418', foreground: '#e6e6e6' }
        : { background: '#ffffff', foreground: '#1b1f24', cursor: '#1b1f24', selectionBackground: '#b3d4fc' },
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(box.current!);
    fit.fit();
    let session: Session | null = null;
    let closed = false;
    const encoder = new TextEncoder();
    vm.shell({ rows: term.rows, cols: term.cols }).then(
      (s) => {
        if (closed) return s.close();
        session = s;
        setStatus('connected');
        s.onData((bytes) => term.write(bytes));
        term.onData((text) => s.write(encoder.encode(text)));
        term.onResize(({ rows, cols }) => s.resize(rows, cols));
        s.exited.then(
          (exit) => setStatus(`the shell exited (${exit.signal ?? `code ${exit.exitCode}`}): reconnect for a new one`),
          (err) => setStatus(`disconnected: ${describeError(err)}`),
        );
        term.focus();
      },
      (err) => setStatus(`cannot open a shell: ${describeError(err)}`),
    );
    const resize = new ResizeObserver(() => fit.fit());
    resize.observe(box.current!);
    return () => {
      closed = true;
      resize.disconnect();
      session?.close();
      term.dispose();
    };
  }, [vm.id, generation]);
  return (
    <div class="terminal-tab">
      <div class="heading">
        <span role="status" class="status">
          Terminal: {status}
        </span>
        <span class="spacer" />
        <button type="button" onClick={() => setGeneration(generation + 1)}>
          Reconnect
        </button>
      </div>
      <div class="terminal" ref={box} data-testid="terminal" />
    </div>
  );
}
