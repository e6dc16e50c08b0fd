// Benchmark dispatcher: `npm run bench -- <scenario> [args...]`, `npm run bench -- all`, or no
// argument to list the scenarios. Each scenario runs in its own Node process.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SCENARIOS: Record<string, { entry: string; about: string }> = {
  'proxy-overhead': { entry: 'proxy-overhead.ts', about: 'direct vs Switchyard vs bare http-proxy-3 vs nginx vs HAProxy' },
  clone: { entry: 'clone/run.ts', about: 'git/hg clones through the proxy' },
  'midnight-stampede': { entry: 'midnight-stampede.ts', about: 'CI bots clone at once while browsers browse: Switchyard vs nginx vs HAProxy' },
  'keep-alive-hog': { entry: 'keep-alive-hog.ts', about: 'idle browser keep-alive connections vs new users: Switchyard vs nginx vs HAProxy' },
  'rolling-recycle': { entry: 'rolling-recycle.ts', about: 'every pool rolled twice under steady page and clone load (PM2 stack)' },
  hardening: { entry: 'hardening.ts', about: 'browsers under slow bodies, fake upgrades and the fuzzer: Switchyard vs nginx vs HAProxy' },
  'greedy-clients': { entry: 'greedy-clients.ts', about: 'browsers beside a greedy client, slow readers and a crawler: Switchyard vs rate-limited nginx/HAProxy' },
  sizing: { entry: 'sizing.ts', about: 'what a git/hg clone costs the proxy and the workers, sharing on and off; Redis and PostgreSQL load of a running fleet' },
  reload: { entry: 'reload.ts', about: '10 config reloads and 3 proxy replacements under browsing and CI clones: Switchyard vs nginx vs HAProxy' },
};

const entryPath = (name: string) => fileURLToPath(new URL(SCENARIOS[name].entry, import.meta.url));
const available = () => Object.keys(SCENARIOS).filter((name) => existsSync(entryPath(name)));

function runScenario(name: string, args: string[]): Promise<number> {
  console.error(`\n=== bench: ${name} ===`);
  const child = spawn(process.execPath, ['--import', 'tsx', entryPath(name), ...args], { stdio: 'inherit' });
  // the child gets Ctrl-C from the terminal itself and cleans up; wait for it instead of dying first
  const ignore = () => {};
  process.on('SIGINT', ignore);
  return new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      process.off('SIGINT', ignore);
      resolve(code ?? (signal ? 1 : 0));
    }),
  );
}

const [scenario, ...args] = process.argv.slice(2);
if (!scenario) {
  console.log('usage: npm run bench -- <scenario> [args...]   (or: all, each with its defaults)\n');
  for (const [name, { entry, about }] of Object.entries(SCENARIOS)) {
    console.log(`  ${name.padEnd(16)} ${about}${existsSync(entryPath(name)) ? '' : ` (not present: bench/${entry})`}`);
  }
} else if (scenario === 'all') {
  for (const name of available()) {
    const code = await runScenario(name, []);
    if (code !== 0) process.exitCode = code;
  }
} else if (!(scenario in SCENARIOS)) {
  console.error(`unknown scenario "${scenario}"; one of: ${Object.keys(SCENARIOS).join(', ')}, all`);
  process.exitCode = 2;
} else if (!existsSync(entryPath(scenario))) {
  console.error(`scenario "${scenario}" has no entry point yet (bench/${SCENARIOS[scenario].entry})`);
  process.exitCode = 2;
} else {
  process.exitCode = await runScenario(scenario, args);
}
