import os from 'node:os';
import { PROJECT_ROOT } from '../../lib/config.ts';
import { runCommand } from './processes.ts';

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGb: number;
  kernel: string;
  node: string;
  loadAverage: string;
}

export function machineInfo(): MachineInfo {
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    loadAverage: os.loadavg().map((load) => load.toFixed(2)).join(' '),
  };
}

/** The first match of pattern in `command args` output, e.g. the version line of nginx -v. */
export async function commandVersion(command: string, args: string[], pattern: RegExp): Promise<string | undefined> {
  const { output } = await runCommand(command, args);
  return pattern.exec(output)?.[1];
}

/** The checkout measured, as `git describe --always --dirty` says it (e.g. "d066672-dirty"). */
export async function sourceRevision(): Promise<string> {
  const { code, output } = await runCommand('git', ['-C', PROJECT_ROOT, 'describe', '--always', '--dirty']);
  return code === 0 ? output.trim() : 'unknown';
}
