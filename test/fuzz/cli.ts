// `npm run fuzz -- --seed N --count M [--concurrency C] [--from I]`: a long seeded fuzz run against a
// real proxy process. Prints a summary table; exits 1 if the proxy went down, a conversation hung,
// or a normal request failed afterwards.
import { parseArgs } from 'node:util';
import { failuresOf, runFuzz } from './run.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: String(Date.now() % 100_000) },
    count: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '16' },
    from: { type: 'string', default: '0' },
  },
});
const numberOf = (name: keyof typeof values): number => {
  const value = Number(values[name]);
  if (!Number.isInteger(value) || value < 0) {
    console.error(`--${name} must be a whole number, got ${JSON.stringify(values[name])}`);
    process.exit(2);
  }
  return value;
};


const report = await runFuzz({
  seed: numberOf('seed'),
  count: numberOf('count'),
  concurrency: Math.max(1, numberOf('concurrency')),
  from: numberOf('from'),
  progress: (line) => console.error(line),
});
const rows: Array<[string, string]> = [
  ['seed', String(report.seed)],
  ['cases', String(report.cases)],
  ['duration', `${(report.durationMs / 1000).toFixed(0)} s`],
  ['proxy went down', report.proxyExit ?? 'no'],
  ['hung conversations', String(report.hung.length)],
  ['proxy error log lines', String(report.proxyErrors.length)],
  ['proxy RSS (MB): baseline / peak / end', `${report.rssMb.baseline} / ${report.rssMb.peak} / ${report.rssMb.end}`],
  ['normal request afterwards', String(report.afterStatus)],
  ...Object.entries(report.outcomes)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, n]): [string, string] => [`outcome ${key}`, String(n)]),
];
for (const [name, value] of rows) console.log(`| ${name.padEnd(38)} | ${value.padStart(12)} |`);
const failures = failuresOf(report);
for (const failure of failures) console.log(`FAIL: ${failure}`);
process.exit(failures.length > 0 ? 1 : 0);
