// A small SVG line chart of training loss and held-out (eval) loss by step. No library:
// two polylines, their points, and a few axis ticks.

export interface Point {
  step: number;
  value: number;
}

export interface Series {
  name: string;
  points: Point[];
  className: string;
}

const W = 640;
const H = 240;
const PAD = { left: 48, right: 16, top: 12, bottom: 32 };

function ticks(min: number, max: number, count: number): number[] {
  if (max <= min) return [min];
  const out: number[] = [];
  for (let i = 0; i <= count; i++) out.push(min + ((max - min) * i) / count);
  return out;
}

const label = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));

export function LossChart({ series, maxSteps, title = "Loss" }: { series: Series[]; maxSteps?: number; title?: string }) {
  const all = series.flatMap((s) => s.points);
  const last = (s: Series) => s.points[s.points.length - 1];
  const summary =
    all.length === 0
      ? `${title}: no points yet.`
      : `${title}: ` +
        series
          .filter((s) => s.points.length)
          .map((s) => `${s.name} ${label(last(s).value)} at step ${last(s).step} (${s.points.length} points)`)
          .join("; ") +
        ".";
  const xMax = Math.max(maxSteps ?? 0, ...all.map((p) => p.step), 1);
  let yMin = Math.min(...all.map((p) => p.value));
  let yMax = Math.max(...all.map((p) => p.value));
  if (!all.length) {
    yMin = 0;
    yMax = 1;
  } else if (yMax - yMin < 1e-6) {
    yMin -= 0.5;
    yMax += 0.5;
  }
  const x = (step: number) => PAD.left + (step / xMax) * (W - PAD.left - PAD.right);
  const y = (value: number) => PAD.top + (1 - (value - yMin) / (yMax - yMin)) * (H - PAD.top - PAD.bottom);

  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={summary} preserveAspectRatio="xMidYMid meet">
        <title>{summary}</title>
        {ticks(yMin, yMax, 4).map((t) => (
          <g key={`y${t}`} className="chart-grid">
            <line x1={PAD.left} x2={W - PAD.right} y1={y(t)} y2={y(t)} />
            <text x={PAD.left - 6} y={y(t) + 4} textAnchor="end">
              {label(t)}
            </text>
          </g>
        ))}
        {ticks(0, xMax, Math.min(5, xMax)).map((t) => (
          <text key={`x${t}`} className="chart-axis" x={x(t)} y={H - 10} textAnchor="middle">
            {Math.round(t)}
          </text>
        ))}
        {series.map((s) => (
          <g key={s.name} className={`chart-series ${s.className}`} data-series={s.name}>
            {s.points.length > 1 && (
              <polyline fill="none" points={s.points.map((p) => `${x(p.step)},${y(p.value)}`).join(" ")} />
            )}
            {s.points.map((p) => (
              <circle key={p.step} cx={x(p.step)} cy={y(p.value)} r={3} data-step={p.step} />
            ))}
          </g>
        ))}
      </svg>
      <figcaption className="chart-legend">
        {series.map((s) => (
          <span key={s.name} className={`legend ${s.className}`}>
            {s.name}
          </span>
        ))}
        <span className="hint">by training step</span>
      </figcaption>
    </figure>
  );
}
