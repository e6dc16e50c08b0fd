import { buildSync } from 'esbuild';
import path from 'node:path';
import { PROJECT_ROOT } from './config.ts';

export const RUNTIME_ENTRIES = { proxy: 'proxy/main.ts', 'proxy-master': 'proxy/master.ts', worker: 'worker/main.ts', supervisor: 'supervisor/main.ts' } as const;
export type RuntimeName = keyof typeof RUNTIME_ENTRIES;
export type RuntimeScripts = Record<RuntimeName, string>;

/** Where the compiled processes live: dist/<name>.mjs. */
export function runtimeScripts(): RuntimeScripts {
  return Object.fromEntries(Object.keys(RUNTIME_ENTRIES).map((name) => [name, path.join(PROJECT_ROOT, 'dist', `${name}.mjs`)])) as RuntimeScripts;
}

/**
 * Compiles the long-running processes to plain JavaScript (esbuild, about a second).
 * Production runs these, not tsx: no transpiler in the request path and faster worker boots,
 * which is what a rolling recycle waits for. Packages stay external (node_modules as installed).
 */
export function buildRuntime(): RuntimeScripts {
  const scripts = runtimeScripts();
  for (const [name, entry] of Object.entries(RUNTIME_ENTRIES) as Array<[RuntimeName, string]>) {
    compileScript(path.join(PROJECT_ROOT, entry), scripts[name]);
  }
  return scripts;
}

/** Bundles one TypeScript entry point to an ES module (packages stay external). */
export function compileScript(entry: string, outfile: string): string {
  buildSync({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: 'linked',
    logLevel: 'warning',
  });
  return outfile;
}
