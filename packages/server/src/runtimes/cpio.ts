// Minimal newc cpio writer: enough to append the guest agent to a runtime's initramfs. The kernel
// unpacks concatenated archives in order, so base + this archive = one initramfs.
interface Entry {
  name: string;
  mode: number;
  data?: Buffer;
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function header(ino: number, entry: Entry, size: number): Buffer {
  const fields = [ino, entry.mode, 0, 0, 1, 0, size, 0, 0, 0, 0, Buffer.byteLength(entry.name) + 1, 0];
  const text = '070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join('');
  const name = Buffer.from(entry.name + '\0');
  return Buffer.concat([Buffer.from(text), name, Buffer.alloc(pad4(110 + name.length))]);
}

export function newcArchive(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const entry of [...entries, { name: 'TRAILER!!!', mode: 0 }]) {
    const data = entry.data ?? Buffer.alloc(0);
    parts.push(
      header(entry.name === 'TRAILER!!!' ? 0 : ino++, entry, data.length),
      data,
      Buffer.alloc(pad4(data.length)),
    );
  }
  return Buffer.concat(parts);
}

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
