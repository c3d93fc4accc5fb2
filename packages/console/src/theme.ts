// Light and dark themes: the system's preference until the user picks one (kept for the tab only).
import { useEffect, useState } from 'preact/hooks';

type Theme = 'light' | 'dark';
const THEME_ITEM = 'capsule.theme';

export function useTheme(): [Theme, () => void] {
  const [theme, setTheme] = useState<Theme>(() => {
    const saved = sessionStorage.getItem(THEME_ITEM);
    if (saved === 'light' || saved === 'dark') return saved;
    return window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
  });
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);
  return [
    theme,
    () => {
      const next = theme === 'dark' ? 'light' : 'dark';
      sessionStorage.setItem(THEME_ITEM, next);
      setTheme(next);
    },
  ];
}
