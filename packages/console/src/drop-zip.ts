// What a user drops or picks to make an image, as one zip: a .zip file as it is, or a folder zipped here in the
// browser (fflate) with its paths relative to the folder.
import { zipSync } from 'fflate';

/** Every file under a dropped directory entry, with its path below that directory. */
async function filesOf(dir: FileSystemDirectoryEntry, prefix = ''): Promise<Array<[string, File]>> {
  const reader = dir.createReader();
  const entries: FileSystemEntry[] = [];
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    entries.push(...batch);
  }
  const files: Array<[string, File]> = [];
  for (const entry of entries) {
    const path = prefix + entry.name;
    if (entry.isDirectory) files.push(...(await filesOf(entry as FileSystemDirectoryEntry, `${path}/`)));
    else
      files.push([
        path,
        await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject)),
      ]);
  }
  return files;
}

/** A folder's files as zip bytes (stored paths relative to the folder). */
async function zipFiles(files: Array<[string, File]>): Promise<Uint8Array> {
  const tree: Record<string, Uint8Array> = {};
  for (const [path, file] of files) tree[path] = new Uint8Array(await file.arrayBuffer());
  return zipSync(tree, { level: 6 });
}

/** The zip a drop carries, with a name for the image (the file's or folder's, made fit for an image name). */
export async function zipFromDrop(data: DataTransfer): Promise<{ zip: Blob; suggestedName: string }> {
  const item = [...data.items].find((i) => i.kind === 'file');
  const entry = item?.webkitGetAsEntry?.();
  if (entry?.isDirectory) {
    const files = await filesOf(entry as FileSystemDirectoryEntry);
    if (files.length === 0) throw new Error(`the folder ${entry.name} is empty`);
    return { zip: new Blob([(await zipFiles(files)) as BlobPart]), suggestedName: imageNameOf(entry.name) };
  }
  const file = data.files[0];
  if (!file) throw new Error('drop a .zip file or a folder');
  return zipFromFile(file);
}

export function zipFromFile(file: File): { zip: Blob; suggestedName: string } {
  if (!/\.zip$/i.test(file.name)) throw new Error(`${file.name} is not a .zip: drop a zip or a folder`);
  return { zip: file, suggestedName: imageNameOf(file.name.replace(/\.zip$/i, '')) };
}

function imageNameOf(raw: string): string {
  return (
    raw
      .replace(/[^A-Za-z0-9_-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 64) || 'app'
  );
}
