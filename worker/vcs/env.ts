import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

// Children get a minimal environment: no database URLs or tokens, no user config surprises.

function baseEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? '/',
    LANG: 'C.UTF-8',
    TZ: 'UTC',
  };
}

export function gitEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...baseEnv(),
    // pathspecs from URLs are literal paths, never ":(glob)" magic
    GIT_LITERAL_PATHSPECS: '1',
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    ...extra,
  };
}

export function hgEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...baseEnv(),
    HGPLAIN: '1',
    HGENCODING: 'UTF-8',
    // no user or system hgrc: only what the worker passes with --config
    HGRCPATH: '',
    ...extra,
  };
}

let hgPython: string | undefined;

/** The Python that runs Mercurial (from the hg script's shebang), for the hgweb CGI bridge. */
export function mercurialPython(): string {
  if (hgPython) return hgPython;
  if (process.env.SWITCHYARD_HG_PYTHON) return (hgPython = process.env.SWITCHYARD_HG_PYTHON);
  try {
    const hgPath = execFileSync('which', ['hg'], { encoding: 'utf8' }).trim();
    const firstLine = readFileSync(hgPath, 'utf8').split('\n', 1)[0];
    const match = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(firstLine);
    if (match) hgPython = match[1].endsWith('/env') && match[2] ? match[2] : match[1];
  } catch {
    // fall through to the default
  }
  return (hgPython ??= 'python3');
}
