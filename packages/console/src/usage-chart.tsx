// A small time-series chart (uPlot) of one or more series, redrawn as samples arrive; sized to its box.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

const COLORS = ['#3b82f6', '#f59e0b', '#10b981', '#ef4444'];

export interface Series {
  label: string;
  /** One value per time; null: no value then (a gap). */
  values: Array<number | null>;
}

export function TimeChart({ title, times, series }: { title: string; times: number[]; series: Series[] }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const labels = series.map((s) => s.label).join('|');
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const width = element.clientWidth || 320;
    plot.current = new uPlot(
      {
        title,
        width,
        height: 170,
        series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 2 }))],
        axes: [{ stroke: 'currentColor' }, { stroke: 'currentColor', size: 60 }],
        legend: { show: series.length > 1 },
      },
      [[], ...series.map(() => [])],
      element,
    );
    // the element, not the ref: the ref is cleared when the chart goes, and a resize may still be on its way
    const resize = new ResizeObserver(() =>
      plot.current?.setSize({ width: element.clientWidth || width, height: 170 }),
    );
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [title, labels]);
  useEffect(() => {
    plot.current?.setData([times, ...series.map((s) => s.values)] as uPlot.AlignedData);
  }, [times, series]);
  return <div class="chart" ref={box} role="img" aria-label={`${title}: ${labels.replaceAll('|', ', ')}`} />;
}
