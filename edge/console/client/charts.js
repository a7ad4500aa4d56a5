// Time-series charts with uPlot (canvas; ~50 KB). The series colors come from
// CSS custom properties so the charts follow the light or dark theme.

import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { html } from "./ui.js";

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

/**
 * A line chart. `data` is uPlot's columnar form: `[xs (unix seconds), ys1, ys2…]`;
 * `series` names each y column and the CSS variable of its color.
 */
export function TimeChart({ label, series, data, height = 180, testid }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const el = box.current;
    const axis = { stroke: cssVar("--muted"), grid: { stroke: cssVar("--grid"), width: 1 } };
    // Times of day; the date only when the span crosses days (uPlot's default
    // stacks both under every tick, which crowds a laptop screen).
    const times = (_u, ticks) => {
      const span = ticks.length > 1 ? ticks[ticks.length - 1] - ticks[0] : 0;
      return ticks.map((t) =>
        new Date(t * 1000).toLocaleString(undefined, {
          ...(span > 86_400 ? { month: "short", day: "numeric" } : {}),
          hour: "2-digit",
          minute: "2-digit",
          ...(span < 3_600 ? { second: "2-digit" } : {}),
          hourCycle: "h23",
        })
      );
    };
    plot.current = new uPlot(
      {
        width: Math.max(el.clientWidth, 200),
        height,
        legend: { show: true, live: false },
        cursor: { drag: { x: false, y: false } },
        axes: [{ ...axis, values: times, space: 80 }, { ...axis, size: 48 }],
        scales: { x: { time: true } },
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: cssVar(s.color),
            width: 2,
            fill: cssVar(s.color) + "22",
            points: { show: false },
          })),
        ],
      },
      data,
      el,
    );
    const resize = new ResizeObserver(() => {
      plot.current?.setSize({ width: Math.max(el.clientWidth, 200), height });
    });
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [series.map((s) => s.label).join(), height]);
  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);
  return html`
    <figure class="chart" data-testid=${testid}>
      <figcaption class="sr-only">${label}</figcaption>
      <div ref=${box} role="img" aria-label=${label}></div>
    </figure>
  `;
}
