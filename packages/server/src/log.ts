// Structured log lines on stderr: one JSON object per line, so operators can grep and parse them.
export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function createLogger(stream: NodeJS.WritableStream = process.stderr, quiet = process.env.CAPSULE_LOG === 'silent'): Logger {
  const write = (level: string) => (msg: string, fields: Record<string, unknown> = {}) => {
    if (quiet && level === 'info') return;
    stream.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + '\n');
  };
  return { info: write('info'), warn: write('warn'), error: write('error') };
}
