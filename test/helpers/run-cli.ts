import { spawn } from 'node:child_process';
import path from 'node:path';
import { PROJECT_ROOT } from '../../lib/config.ts';

export const CLI = path.join(PROJECT_ROOT, 'bin', 'switchyard.js');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs bin/switchyard.js from the project root with only PATH, HOME and `env` set; killed after `timeoutMs`. */
export function runCli(args: string[], env: Record<string, string>, options: { home: string; timeoutMs?: number }): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: PROJECT_ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: options.home, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
