import type { Channel, GuestReply } from '@capsule/protocol';

export function reply(channel: Channel, message: GuestReply): void {
  channel.sendMessage(message);
}

export function replyError(channel: Channel, code: string, message: string): void {
  reply(channel, { type: 'error', code, message });
}

/** errno → a stable agent error code the host maps to its own registry. */
export function errnoReply(channel: Channel, err: unknown, what: string): void {
  const e = err as NodeJS.ErrnoException;
  const code = e.code === 'ENOENT' ? 'NOT_FOUND' : 'FILE_ERROR';
  replyError(channel, code, `${what}: ${e.code ?? ''} ${e.message}`.trim());
}
