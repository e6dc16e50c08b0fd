// Small wrapper around uPlot (loaded globally from /assets/vendor/uPlot.js): one time-series chart
// that follows its container's width.

const PALETTE = ['#2dd4bf', '#60a5fa', '#f472b6', '#fbbf24', '#a78bfa', '#f87171', '#34d399', '#fb923c', '#e879f9', '#94a3b8'];
const AXIS = { stroke: '#8b9bb4', grid: { stroke: 'rgba(148,163,184,0.12)', width: 1 }, ticks: { stroke: 'rgba(148,163,184,0.2)', width: 1 }, font: '11px system-ui, sans-serif' };
const HEIGHT = 190;

export class Chart {
  constructor(container, names, format) {
    this.container = container;
    container.replaceChildren();
    const opts = {
      width: Math.max(container.clientWidth, 200),
      height: HEIGHT,
      cursor: { points: { size: 6 } },
      legend: { live: true },
      scales: { x: { time: true }, y: { range: (_u, min, max) => [0, Math.max(max * 1.1, min + 1)] } },
      axes: [AXIS, { ...AXIS, size: 50, values: (_u, ticks) => ticks.map(format) }],
      series: [{}, ...names.map((name, i) => ({ label: name, stroke: PALETTE[i % PALETTE.length], width: 1.6, points: { show: false }, spanGaps: true, value: (_u, v) => (v == null ? '–' : format(v)) }))],
    };
    this.plot = new window.uPlot(opts, [[], ...names.map(() => [])], container);
    this.resizer = new ResizeObserver(() => this.plot.setSize({ width: Math.max(container.clientWidth, 200), height: HEIGHT }));
    this.resizer.observe(container);
  }

  /** data: [times in seconds, ...one array per series] */
  setData(data) {
    this.plot.setData(data);
    // What the canvas shows, readable from the DOM (the end-to-end test checks that it moves).
    let max = 0;
    for (const series of data.slice(1)) for (const value of series) if (value != null && value > max) max = value;
    this.container.dataset.points = String(data[0].length);
    this.container.dataset.max = String(max);
  }

  destroy() {
    this.resizer.disconnect();
    this.plot.destroy();
  }
}

const round1 = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2).replace(/\.?0+$/, '') || '0');
export const formats = { plain: round1, ms: (v) => `${round1(v)}`, mb: (v) => `${round1(v)}` };
