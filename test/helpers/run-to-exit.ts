import { spawn } from 'node:child_process';
import path from 'node:path';
import { PROJECT_ROOT } from '../../lib/config.ts';

export interface ExitResult {
  code: number | null;
  /** stdout and stderr together */
  output: string;
  /** the JSON log lines of the output */
  lines: Array<Record<string, any>>;
}

/**
 * Runs an entry point (relative to the project root) that is expected to stop by itself, e.g. on a
 * bad setting. One that keeps running is killed after `timeoutMs`, or as soon as its output matches
 * `killOn` (it started although it should not have), and its exit code is then null.
 */
export async function runToExit(entry: string, env: NodeJS.ProcessEnv, { timeoutMs = 20_000, killOn }: { timeoutMs?: number; killOn?: RegExp } = {}): Promise<ExitResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, entry)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (data: Buffer) => {
    output += data.toString();
    if (killOn?.test(output)) child.kill('SIGKILL');
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  const lines = output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, any>];
      } catch {
        return [];
      }
    });
  return { code, output, lines };
}
