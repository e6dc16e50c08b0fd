// Proxy overhead: direct to the upstream vs Switchyard vs a bare http-proxy-3 forwarder vs nginx
// and HAProxy, one run, same upstream, same load tools: autocannon at saturation, the open-loop
// paced generator (bench/lib/paced-load.ts) at the fixed rate. The target gets a core of its own.
//   npx tsx bench/proxy-overhead.ts [--duration 5] [--warmup 1] [--jit-warmup 8] [--rounds 9] [--instances 3] [--connections 32] [--rate-fraction 0.5] [--no-doc]
// Prints the tables and rewrites the "## Proxy overhead (bench/proxy-overhead)" section of docs/benchmarks.md.
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machineInfo } from './lib/machine.ts';
import { replaceSection } from './lib/markdown-section.ts';
import { isolateTargetCpu } from './lib/cpu-pinning.ts';
import { installCleanup, stopAll } from './lib/processes.ts';
import { Progress } from './lib/progress.ts';
import { measureAll, progressSteps, type Settings } from './proxy-overhead/measure.ts';
import { markdownSection, rateTable, saturationTable, sharedCoreTable, verdict, type Run } from './proxy-overhead/report.ts';
import { startUpstream, targetSpecs } from './proxy-overhead/targets.ts';

const DOC = fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url));
const HEADING = '## Proxy overhead (bench/proxy-overhead)';
const PREAMBLE = `# Benchmarks

Results of the scenarios under \`bench/\`. Run one with \`npm run bench -- <scenario>\` (\`npm run bench\` lists them);
each scenario rewrites its own section below.
`;

function settingsFrom(argv: string[]): { settings: Settings; writeDoc: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      'jit-warmup': { type: 'string', default: '8' },
      rounds: { type: 'string', default: '9' },
      instances: { type: 'string', default: '3' },
      connections: { type: 'string', default: '32' },
      'rate-fraction': { type: 'string', default: '0.5' },
      'no-doc': { type: 'boolean', default: false },
    },
  });
  const positive = (flag: 'duration' | 'warmup' | 'jit-warmup' | 'rounds' | 'instances' | 'connections' | 'rate-fraction', integer = false) => {
    const value = Number(values[flag]);
    if (!(value > 0) || (integer && !Number.isInteger(value))) throw new Error(`--${flag}: expected a positive ${integer ? 'integer' : 'number'}`);
    return value;
  };
  const settings: Settings = {
    durationSec: positive('duration'),
    warmupSec: positive('warmup'),
    jitWarmupSec: positive('jit-warmup'),
    rounds: positive('rounds', true),
    instances: positive('instances', true),
    connections: positive('connections', true),
    rateFraction: positive('rate-fraction'),
  };
  return { settings, writeDoc: !values['no-doc'] };
}

export async function main(argv: string[]): Promise<void> {
  const { settings, writeDoc } = settingsFrom(argv);
  installCleanup();
  const machine = machineInfo();
  const date = new Date();
  try {
    const isolation = isolateTargetCpu();
    const upstream = await startUpstream();
    const upstreamAddress = new URL(upstream.url).host;
    const specs = await targetSpecs(upstream, (pkg) => process.stderr.write(`installing ${pkg} with apt-get...\n`), isolation?.targetPrefix);
    for (const spec of specs.filter((s) => s.skipped)) process.stderr.write(`skipping ${spec.label}: ${spec.skipped}\n`);
    const progress = new Progress(progressSteps(specs.filter((spec) => !spec.skipped), settings));
    const { measurements, rate, sharedCore } = await measureAll(specs, upstreamAddress, settings, progress, isolation?.targetCpu);
    const run: Run = { measurements, rate, settings, machine, date, isolation, sharedCore };

    console.log(`\nSaturation (${settings.connections} connections)\n\n${saturationTable(run)}`);
    if (sharedCore.length > 0) console.log(`\nBare forwarder and Switchyard at once, on one core\n\n${sharedCoreTable(run)}`);
    console.log(`\nFixed rate ${rate} req/s\n\n${rateTable(run)}\n`);
    for (const line of verdict(run).lines) console.log(`- ${line}`);

    if (writeDoc) {
      const versions = Object.fromEntries(specs.filter((spec) => spec.id === 'nginx' || spec.id === 'haproxy').map((spec) => [spec.label, spec.version]));
      replaceSection(DOC, HEADING, markdownSection(run, versions), PREAMBLE);
      console.log(`\nwrote ${HEADING.slice(3)} in docs/benchmarks.md`);
    }
  } finally {
    await stopAll();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
