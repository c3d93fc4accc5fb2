import type { AgentErrorCode, Channel, GuestReply } from '@capsule/protocol';

export function reply(channel: Channel, message: GuestReply): void {
  channel.sendMessage(message);
}

export function replyError(channel: Channel, code: AgentErrorCode, message: string): void {
  reply(channel, { type: 'error', code, message });
}

/** errno → a stable agent error code the host maps to its own registry. */
export function errnoReply(channel: Channel, err: unknown, what: string): void {
  const e = err as NodeJS.ErrnoException;
  const code = e.code === 'ENOENT' ? 'NOT_FOUND' : 'FILE_ERROR';
  // Node's own message already starts with the errno name ("ENOENT: no such file…"): say it once
  const text = e.code && !e.message.startsWith(`${e.code}:`) ? `${e.code}: ${e.message}` : e.message;
  replyError(channel, code, `${what}: ${text}`);
}
