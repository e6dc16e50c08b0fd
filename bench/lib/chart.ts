import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

// Dependency-free SVG charts for docs/benchmarks.md: horizontal bars, one row per target, with
// optional series side by side (e.g. p50 and p99) and a dashed reference line (e.g. a target).

export interface BarSeries {
  name: string;
  color: string;
  /** one value per row; NaN draws nothing and prints "-" */
  values: number[];
}

export interface BarChart {
  title: string;
  /** axis unit, e.g. "ms" */
  unit: string;
  rows: string[];
  series: BarSeries[];
  /** a vertical dashed line with its label, e.g. { value: 100, label: 'target 100 ms' } */
  reference?: { value: number; label: string };
  /** logarithmic axis (for values spanning orders of magnitude) */
  log?: boolean;
}

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const format = (value: number) => (!Number.isFinite(value) ? '-' : value >= 100 ? Math.round(value).toLocaleString('en-US') : value >= 10 ? value.toFixed(1) : value.toFixed(2));

function niceMax(value: number): number {
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 2.5, 5, 10].map((step) => step * power).find((candidate) => candidate >= value) ?? value;
}

export function barChartSvg(chart: BarChart): string {
  const labelWidth = Math.max(120, ...chart.rows.map((row) => row.length * 7 + 16));
  const plotWidth = 460;
  const barHeight = 14;
  const rowHeight = chart.series.length * (barHeight + 2) + 10;
  const top = 44;
  const height = top + chart.rows.length * rowHeight + 40;
  const width = labelWidth + plotWidth + 90;
  const values = chart.series.flatMap((series) => series.values).filter((value) => Number.isFinite(value) && value > 0);
  const maxValue = niceMax(Math.max(chart.reference?.value ?? 0, ...values, 1e-9));
  const minLog = chart.log ? 10 ** Math.floor(Math.log10(Math.min(...values, chart.reference?.value ?? Infinity))) : 0;
  const scale = (value: number) =>
    chart.log
      ? (Math.max(0, Math.log10(Math.max(value, minLog) / minLog)) / Math.log10(maxValue / minLog)) * plotWidth
      : (value / maxValue) * plotWidth;
  const ticks = chart.log
    ? Array.from({ length: Math.round(Math.log10(maxValue / minLog)) + 1 }, (_, i) => minLog * 10 ** i)
    : Array.from({ length: 5 }, (_, i) => (maxValue * i) / 4);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${escape(chart.title)}</text>`,
  ];
  chart.series.forEach((series, i) => {
    const x = labelWidth + i * 110;
    out.push(`<rect x="${x}" y="28" width="10" height="10" fill="${series.color}"/><text x="${x + 14}" y="37">${escape(series.name)}</text>`);
  });
  for (const tick of ticks) {
    const x = labelWidth + scale(tick);
    out.push(`<line x1="${x}" y1="${top - 4}" x2="${x}" y2="${height - 34}" stroke="#ddd"/>`);
    out.push(`<text x="${x}" y="${height - 20}" text-anchor="middle" fill="#555">${format(tick)}</text>`);
  }
  out.push(`<text x="${labelWidth + plotWidth / 2}" y="${height - 5}" text-anchor="middle" fill="#555">${escape(chart.unit)}${chart.log ? ' (log scale)' : ''}</text>`);
  chart.rows.forEach((row, r) => {
    const y = top + r * rowHeight;
    out.push(`<text x="${labelWidth - 8}" y="${y + (rowHeight - 10) / 2 + 4}" text-anchor="end">${escape(row)}</text>`);
    chart.series.forEach((series, s) => {
      const value = series.values[r];
      const barY = y + s * (barHeight + 2);
      const length = Number.isFinite(value) ? Math.max(1, scale(value)) : 0;
      if (length) out.push(`<rect x="${labelWidth}" y="${barY}" width="${length.toFixed(1)}" height="${barHeight}" fill="${series.color}"/>`);
      out.push(`<text x="${labelWidth + length + 4}" y="${barY + barHeight - 3}" fill="#333">${format(value)}</text>`);
    });
  });
  if (chart.reference) {
    const x = labelWidth + scale(chart.reference.value);
    out.push(`<line x1="${x}" y1="${top - 4}" x2="${x}" y2="${height - 34}" stroke="#c00" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${x + 3}" y="${top - 6}" fill="#c00">${escape(chart.reference.label)}</text>`);
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** Writes the chart to file (creating its directory). */
export function writeBarChart(file: string, chart: BarChart): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, barChartSvg(chart));
}
