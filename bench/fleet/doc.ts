import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineInfo, type MachineInfo } from '../lib/machine.ts';
import { replaceSection } from '../lib/markdown-section.ts';
import type { FleetTargetSpec } from './targets.ts';

// Shared pieces of the fleet scenarios' sections in docs/benchmarks.md.

export const DOCS_DIR = fileURLToPath(new URL('../../docs/', import.meta.url));
export const IMG_DIR = path.join(DOCS_DIR, 'img');
const PREAMBLE = '# Benchmarks\n';

export function writeDocSection(heading: string, body: string): void {
  replaceSection(path.join(DOCS_DIR, 'benchmarks.md'), heading, body, PREAMBLE);
}

/** Load average now, as "1.23 1.10 0.98". */
export const loadAverage = () => os.loadavg().map((load) => load.toFixed(2)).join(' ');

export function machineLine(machine: MachineInfo, specs: Pick<FleetTargetSpec, 'label' | 'version'>[], loadAtEnd: string): string {
  const versions = specs.filter((spec) => spec.version).map((spec) => `${spec.label.split(' ')[0]} ${spec.version}`);
  const unique = [...new Set(versions)].join(', ');
  return (
    `Machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGb} GB, ${machine.kernel}; Node ${machine.node}` +
    `${unique ? `; ${unique}` : ''}. Load average (1/5/15 min) ${machine.loadAverage} at the start, ${loadAtEnd} at the end: ` +
    'the machine is small and shared (other tests and benchmarks may have been running), and the load generator, the clients, the ' +
    'proxy and the workers all share its cores. Absolute times are context; compare rows of the same run.'
  );
}

export { machineInfo };

/** Markdown image link relative to docs/. */
export const imageLink = (alt: string, file: string) => `![${alt}](${path.relative(DOCS_DIR, file)})`;

/** Reads --name values; every one must be a positive number (integer when asked). */
export function positiveFlags<K extends string>(values: Record<string, unknown>, integers: readonly K[], numbers: readonly K[] = []): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const flag of [...integers, ...numbers]) {
    const value = Number(values[flag]);
    const integer = integers.includes(flag);
    if (!(value >= 0) || (integer && !Number.isInteger(value))) throw new Error(`--${flag}: expected a non-negative ${integer ? 'integer' : 'number'}`);
    out[flag] = value;
  }
  return out;
}
