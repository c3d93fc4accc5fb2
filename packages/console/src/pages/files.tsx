// A file browser in the MicroVM: list a directory, go in and up, upload (with a progress bar), download, make a
// directory, delete. Paths are the guest's.
import type { FileStat, MicroVM } from '@capsule/sdk';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ActionButton, Empty, ErrorNote, formatBytes, ListTable } from '../components.js';

function join(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

function parent(dir: string): string {
  const up = dir.replace(/\/[^/]*\/?$/, '');
  return up === '' ? '/' : up;
}

export function FilesTab({ vm }: { vm: MicroVM }) {
  const [dir, setDir] = useState('/root');
  const [entries, setEntries] = useState<FileStat[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [upload, setUpload] = useState<{ name: string; sent: number; total: number } | null>(null);
  const [newDir, setNewDir] = useState('');
  const refresh = useCallback(async () => {
    setError(null);
    try {
      const list = await vm.files.list(dir);
      setEntries(
        list.sort((a, b) => Number(b.type === 'dir') - Number(a.type === 'dir') || a.name.localeCompare(b.name)),
      );
    } catch (err) {
      setEntries(null);
      setError(err);
    }
  }, [vm, dir]);
  useEffect(() => void refresh(), [refresh]);

  const uploadFiles = async (files: FileList | null): Promise<void> => {
    for (const file of Array.from(files ?? [])) {
      setUpload({ name: file.name, sent: 0, total: file.size });
      try {
        await vm.files.write(join(dir, file.name), file, {
          onProgress: (sent, total) => setUpload({ name: file.name, sent, total }),
        });
      } catch (err) {
        setError(err);
      }
    }
    setUpload(null);
    await refresh();
  };
  const download = async (entry: FileStat): Promise<void> => {
    const bytes = await vm.files.read(join(dir, entry.name));
    const url = URL.createObjectURL(new Blob([bytes as BlobPart]));
    const a = document.createElement('a');
    a.href = url;
    a.download = entry.name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };

  return (
    <div class="files">
      <form
        class="heading"
        onSubmit={(e) => {
          e.preventDefault();
          void refresh();
        }}
      >
        <label for="files-path">Directory</label>
        <input id="files-path" value={dir} onChange={(e) => setDir((e.target as HTMLInputElement).value || '/')} />
        <button type="button" onClick={() => setDir(parent(dir))} disabled={dir === '/'}>
          Up
        </button>
        <label class="button">
          Upload files
          <input
            type="file"
            multiple
            class="visually-hidden"
            aria-label="Upload files"
            onChange={(e) => void uploadFiles((e.target as HTMLInputElement).files)}
          />
        </label>
      </form>
      {upload && (
        <div class="progress">
          <label for="upload-progress">Uploading {upload.name}</label>
          <progress id="upload-progress" max={upload.total || 1} value={upload.sent} />
          <span>
            {formatBytes(upload.sent)} / {formatBytes(upload.total)}
          </span>
        </div>
      )}
      <form
        class="inline"
        onSubmit={async (e) => {
          e.preventDefault();
          try {
            await vm.files.mkdir(join(dir, newDir));
            setNewDir('');
            await refresh();
          } catch (err) {
            setError(err);
          }
        }}
      >
        <label for="files-mkdir">New directory</label>
        <input
          id="files-mkdir"
          value={newDir}
          required
          onInput={(e) => setNewDir((e.target as HTMLInputElement).value)}
        />
        <button type="submit">Make directory</button>
      </form>
      <ErrorNote error={error} />
      {entries && entries.length === 0 && <Empty>This directory is empty: upload a file with the button above.</Empty>}
      {entries && entries.length > 0 && (
        <ListTable columns={['Name', 'Size', 'Modified', 'Actions']}>
          {entries.map((entry) => (
            <tr key={entry.name} data-name={entry.name}>
              <td>
                {entry.type === 'dir' ? (
                  <button type="button" class="link" onClick={() => setDir(join(dir, entry.name))}>
                    {entry.name}/
                  </button>
                ) : (
                  entry.name
                )}
              </td>
              <td class="num">{entry.type === 'dir' ? '—' : formatBytes(entry.sizeBytes)}</td>
              <td class="num">{new Date(entry.modifiedAt).toLocaleString()}</td>
              <td class="actions">
                {entry.type !== 'dir' && <ActionButton label="Download" run={() => download(entry)} />}
                <ActionButton
                  label="Delete"
                  kind="danger"
                  confirm={`Delete ${entry.name}?`}
                  run={async () => {
                    await vm.files.remove(join(dir, entry.name), { recursive: entry.type === 'dir' });
                    await refresh();
                  }}
                />
              </td>
            </tr>
          ))}
        </ListTable>
      )}
    </div>
  );
}
