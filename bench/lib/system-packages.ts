import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { runCommand } from './processes.ts';

const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...SYSTEM_DIRS];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export type Installed = { binary: string } | { skipped: string };

/**
 * Finds `binary`, else installs the first Debian package of `packages` that apt-get can install
 * (only as root). Never throws: a failure comes back as { skipped: reason }.
 */
export async function ensureBinary(binary: string, packages: string[], onInstall?: (pkg: string) => void): Promise<Installed> {
  const found = findBinary(binary);
  if (found) return { binary: found };
  if (process.getuid?.() !== 0) return { skipped: `${binary} not installed and not root (apt-get install -y ${packages[0]})` };
  if (!findBinary('apt-get')) return { skipped: `${binary} not installed and no apt-get` };
  let lastError = '';
  for (const pkg of packages) {
    onInstall?.(pkg);
    let result = await runCommand('apt-get', ['install', '-y', '--no-install-recommends', pkg], 180_000);
    if (result.code !== 0 && /Unable to locate|no installation candidate/i.test(result.output)) {
      await runCommand('apt-get', ['update'], 180_000);
      result = await runCommand('apt-get', ['install', '-y', '--no-install-recommends', pkg], 180_000);
    }
    const installed = findBinary(binary);
    if (installed) return { binary: installed };
    lastError = result.output.trim().split('\n').slice(-1)[0] ?? `exit ${result.code}`;
  }
  return { skipped: `apt-get install ${packages.join(' / ')} failed: ${lastError}` };
}
