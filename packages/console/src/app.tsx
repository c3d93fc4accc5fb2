// The console's frame: sign-in gate, navigation, theme, and the page the hash route names.
import { useEffect, useState } from 'preact/hooks';
import { ErrorNote } from './components.js';
import { AdminPage } from './pages/admin.js';
import { ImagePage, ImagesPage } from './pages/images.js';
import { LoginPage } from './pages/login.js';
import { MicroVMPage } from './pages/microvm.js';
import { MicroVMsPage } from './pages/microvms.js';
import { OverviewPage } from './pages/overview.js';
import { href, useRoute } from './route.js';
import { type ConsoleSession, savedKey, signIn, signOut } from './session.js';
import { useTheme } from './theme.js';

export function App() {
  const [session, setSession] = useState<ConsoleSession | null>(null);
  const [restoring, setRestoring] = useState(() => savedKey() !== null);
  const [error, setError] = useState<unknown>(null);
  const route = useRoute();
  const [theme, toggleTheme] = useTheme();

  useEffect(() => {
    const key = savedKey();
    if (!key) return;
    signIn(key)
      .then(setSession, (err) => {
        signOut();
        setError(err);
      })
      .finally(() => setRestoring(false));
  }, []);

  if (restoring) return <p class="loading">Signing in…</p>;
  if (!session) return <LoginPage onSignedIn={setSession} initialError={error} />;

  const nav: Array<[string, string, boolean]> = [
    ['MicroVMs', href('microvms'), route.page === 'microvms' || route.page === 'microvm'],
    ['Images', href('images'), route.page === 'images' || route.page === 'image'],
    ['Overview', href('overview'), route.page === 'overview'],
  ];
  if (session.isAdmin) nav.push(['Admin', href('admin'), route.page === 'admin']);
  return (
    <div class="frame">
      <header class="topbar">
        <a class="brand" href={href('microvms')}>
          Capsule
        </a>
        <nav aria-label="Sections">
          {nav.map(([label, to, current]) => (
            <a key={label} href={to} aria-current={current ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <span class="spacer" />
        <button
          type="button"
          class="quiet"
          onClick={toggleTheme}
          aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}
        >
          {theme === 'dark' ? 'Light theme' : 'Dark theme'}
        </button>
        <button
          type="button"
          class="quiet"
          onClick={() => {
            signOut();
            setSession(null);
          }}
        >
          Sign out
        </button>
      </header>
      <main>
        {route.page === 'microvms' && <MicroVMsPage session={session} />}
        {route.page === 'microvm' && <MicroVMPage session={session} id={route.id} tab={route.tab} />}
        {route.page === 'images' && <ImagesPage session={session} />}
        {route.page === 'image' && <ImagePage session={session} name={route.name} />}
        {route.page === 'overview' && <OverviewPage session={session} />}
        {route.page === 'admin' &&
          (session.isAdmin ? (
            <AdminPage session={session} />
          ) : (
            <ErrorNote error="The admin pages need the admin key." />
          ))}
      </main>
    </div>
  );
}
