// Images: the tenant's images and their versions; create one by dropping a zip or a folder (upload progress, then
// the build log as it is written); one image's versions with their state, failing step and logs; launch a version;
// delete an image or a version.
import type { Image, ImageVersion } from '@capsule/sdk';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ActionButton, Empty, ErrorNote, StateBadge, formatBytes, ListTable } from '../components.js';
import { zipFromDrop, zipFromFile } from '../drop-zip.js';
import { href } from '../route.js';
import type { ConsoleSession } from '../session.js';

function CreateImage({ session, onCreated }: { session: ConsoleSession; onCreated: (v: ImageVersion) => void }) {
  const [name, setName] = useState('');
  const [zip, setZip] = useState<Blob | null>(null);
  const [over, setOver] = useState(false);
  const [progress, setProgress] = useState<{ sent: number; total: number } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const take = (picked: { zip: Blob; suggestedName: string }): void => {
    setZip(picked.zip);
    setName((n) => n || picked.suggestedName);
    setError(null);
  };
  const create = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (!zip) return setError('drop a .zip file or a folder first');
    setError(null);
    setProgress({ sent: 0, total: zip.size });
    try {
      const version = await session.capsule.images.create(
        name.trim(),
        { zip },
        {
          onProgress: (sent, total) => setProgress({ sent, total }),
        },
      );
      setZip(null);
      setName('');
      onCreated(version);
    } catch (err) {
      setError(err);
    } finally {
      setProgress(null);
    }
  };
  return (
    <form class="panel" onSubmit={create} aria-label="Create an image">
      <h2>Create an image</h2>
      {/* biome-ignore lint/a11y/noStaticElementInteractions: a drop target; the keyboard uses its file input */}
      <div
        class={`dropzone${over ? ' over' : ''}`}
        data-testid="dropzone"
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => {
          e.preventDefault();
          setOver(false);
          if (e.dataTransfer) zipFromDrop(e.dataTransfer).then(take, setError);
        }}
      >
        {zip
          ? `${formatBytes(zip.size)} ready to upload`
          : 'Drop a .zip or a folder here (a Dockerfile or capsule.json inside), or'}
        <label class="button">
          choose a zip
          <input
            type="file"
            accept=".zip,application/zip"
            class="visually-hidden"
            aria-label="Choose a zip"
            onChange={(e) => {
              const file = (e.target as HTMLInputElement).files?.[0];
              if (file)
                try {
                  take(zipFromFile(file));
                } catch (err) {
                  setError(err);
                }
            }}
          />
        </label>
      </div>
      <div class="field">
        <label for="image-name">Image name</label>
        <input
          id="image-name"
          required
          value={name}
          pattern="[A-Za-z0-9_\-]{1,64}"
          onInput={(e) => setName((e.target as HTMLInputElement).value)}
        />
      </div>
      {progress && (
        <div class="progress">
          <label for="image-upload-progress">Uploading</label>
          <progress id="image-upload-progress" max={progress.total || 1} value={progress.sent} />
          <span>
            {formatBytes(progress.sent)} / {formatBytes(progress.total)}
          </span>
        </div>
      )}
      <button type="submit" class="primary" disabled={!zip || progress !== null}>
        Create image
      </button>
      <ErrorNote error={error} />
    </form>
  );
}

export function ImagesPage({ session }: { session: ConsoleSession }) {
  const [images, setImages] = useState<Image[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    session.capsule.images.list().then(setImages, setError);
  }, [session]);
  return (
    <section aria-labelledby="images-title">
      <h1 id="images-title">Images</h1>
      <CreateImage session={session} onCreated={(v) => (window.location.hash = href('images', v.name))} />
      <ErrorNote error={error} />
      {images && images.length === 0 && <Empty>No images yet: drop a zip above to make one.</Empty>}
      {images && images.length > 0 && (
        <ListTable columns={['Image', 'Versions', 'Newest']}>
          {images.map((image) => {
            const newest = image.versions.at(-1);
            return (
              <tr key={image.name}>
                <td>
                  <a href={href('images', image.name)}>{image.name}</a>
                </td>
                <td class="num">{image.versions.length}</td>
                <td>{newest ? <StateBadge state={newest.state} /> : '—'}</td>
              </tr>
            );
          })}
        </ListTable>
      )}
    </section>
  );
}

function BuildLog({ session, version }: { session: ConsoleSession; version: ImageVersion }) {
  const [text, setText] = useState('');
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let stopped = false;
    setText('');
    session.capsule.images
      .waitUntilBuilt(version.name, version.version, {
        onLog: (more) => !stopped && setText((t) => t + more),
        pollMs: 1000,
      })
      .catch((err) => !stopped && setError(err));
    return () => {
      stopped = true;
    };
  }, [session, version.name, version.version]);
  return (
    <>
      <ErrorNote error={error} />
      <pre class="log" data-testid="build-log">
        {text || 'Waiting for the build log…'}
      </pre>
    </>
  );
}

export function ImagePage({ session, name }: { session: ConsoleSession; name: string }) {
  const [image, setImage] = useState<Image | null>(null);
  const [open, setOpen] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(() => session.capsule.images.get(name).then(setImage, setError), [session, name]);
  useEffect(() => {
    void load();
    const timer = setInterval(() => void load(), 2000);
    return () => clearInterval(timer);
  }, [load]);
  const launch = async (version: number): Promise<void> => {
    const vm = await session.capsule.microvms.run({ imageName: name, imageVersion: version });
    window.location.hash = href('microvms', vm.id);
  };
  const versions = [...(image?.versions ?? [])].reverse();
  const shown = open ?? versions[0]?.version ?? null;
  return (
    <section aria-labelledby="image-title">
      <p>
        <a href={href('images')}>← Images</a>
      </p>
      <div class="heading">
        <h1 id="image-title">{name}</h1>
        <span class="spacer" />
        <ActionButton
          label="Delete image"
          kind="danger"
          confirm={`Delete ${name} and every version?`}
          run={async () => {
            await session.capsule.images.delete(name);
            window.location.hash = href('images');
          }}
        />
      </div>
      <ErrorNote error={error} />
      <ListTable columns={['Version', 'State', 'Runtime', 'Failed step', 'Actions']}>
        {versions.map((v) => (
          <tr key={v.version} data-version={v.version}>
            <td class="num">{v.version}</td>
            <td>
              <StateBadge state={v.state} />
            </td>
            <td>{v.runtime}</td>
            <td>{v.failedStep ? `${v.failedStep}: ${v.failureReason ?? ''}` : '—'}</td>
            <td class="actions">
              <button type="button" onClick={() => setOpen(v.version)} aria-pressed={shown === v.version}>
                Build log
              </button>
              {v.state === 'SUCCESSFUL' && <ActionButton label="Launch" kind="primary" run={() => launch(v.version)} />}
              <ActionButton
                label="Delete"
                kind="danger"
                confirm={`Delete version ${v.version}?`}
                run={async () => {
                  await session.capsule.images.delete(name, v.version);
                  await load();
                }}
              />
            </td>
          </tr>
        ))}
      </ListTable>
      {shown !== null && versions.find((v) => v.version === shown) && (
        <BuildLog session={session} version={versions.find((v) => v.version === shown)!} />
      )}
    </section>
  );
}
