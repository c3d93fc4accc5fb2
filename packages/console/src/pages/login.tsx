// Sign in with an API key: it is checked against the API and kept in this tab's sessionStorage only.
import { useState } from 'preact/hooks';
import { ErrorNote } from '../components.js';
import { type ConsoleSession, signIn } from '../session.js';

export function LoginPage({
  onSignedIn,
  initialError,
}: {
  onSignedIn: (session: ConsoleSession) => void;
  initialError: unknown;
}) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(initialError);
  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await signIn(key.trim()));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <h1>Capsule</h1>
      <form onSubmit={submit}>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autocomplete="off"
          required
          value={key}
          onInput={(e) => setKey((e.target as HTMLInputElement).value)}
        />
        <p class="hint">Kept in this tab only.</p>
        <p class="hint">
          The admin key is in <code>&lt;data-dir&gt;/admin-key</code>.
        </p>
        <p class="hint">
          A tenant's key comes from <code>capsule key create</code>.
        </p>
        <button type="submit" class="primary" disabled={busy || key.trim() === ''}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <ErrorNote error={error} />
      </form>
    </main>
  );
}
