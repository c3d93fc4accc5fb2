// A small zip writer for tests: any name, mode or declared size an attacker could write (deflate, unix
// modes, symlinks, directories; `declaredSize` is a size that lies). Entries are whole buffers. The CLI
// zips directories with yazl (packages/cli/src/zip-dir.ts); this writer exists to build odd zips.
import zlib from 'node:zlib';

export interface ZipSpec {
  name: string;
  data?: Buffer | string;
  /** Unix mode with type bits (0o100644 file, 0o40755 directory, 0o120777 symlink). */
  mode?: number;
  deflate?: boolean;
  declaredSize?: number;
}

export function zipOf(specs: ZipSpec[]): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const spec of specs) {
    const data = Buffer.from(spec.data ?? '');
    const body = spec.deflate ? zlib.deflateRawSync(data) : data;
    const name = Buffer.from(spec.name);
    const crc = zlib.crc32(data);
    const size = spec.declaredSize ?? data.length;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6); // names are UTF-8
    local.writeUInt16LE(spec.deflate ? 8 : 0, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    const dir = Buffer.alloc(46);
    dir.writeUInt32LE(0x02014b50, 0);
    dir.writeUInt16LE((3 << 8) | 20, 4); // made by unix
    dir.writeUInt16LE(20, 6);
    dir.writeUInt16LE(0x0800, 8);
    dir.writeUInt16LE(spec.deflate ? 8 : 0, 10);
    dir.writeUInt32LE(crc, 16);
    dir.writeUInt32LE(body.length, 20);
    dir.writeUInt32LE(size, 24);
    dir.writeUInt16LE(name.length, 28);
    dir.writeUInt32LE(((spec.mode ?? (spec.name.endsWith('/') ? 0o40755 : 0o100644)) << 16) >>> 0, 38);
    dir.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    central.push(dir, name);
    offset += local.length + name.length + body.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(specs.length, 8);
  end.writeUInt16LE(specs.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}
