import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { compileScript } from '../../lib/build.ts';
import { PROJECT_ROOT } from '../../lib/config.ts';
import { PROXY_NODE_ARGS } from '../../lib/ecosystem.ts';
import { PROXY_SCRIPT_ENV } from '../../lib/proxy-script-env.ts';
import { request } from '../../test/helpers/http.ts';
import { freePort, waitForPort } from '../lib/net.ts';
import { nextLine, spawnNodeScript } from '../lib/processes.ts';
import { ProcessWatch } from '../lib/process-watch.ts';
import { findBinary } from '../lib/system-packages.ts';
import { pollUntil, type EventOutcome, type ReloadableTarget } from './target.ts';

// Switchyard as PM2 runs it: the proxy master (proxy/master.ts) holding the listener, running the
// compiled proxy process (proxy/main.ts), with a config file on disk. A reload rewrites the file
// and sends SIGHUP to the master (as `pm2 sendSignal SIGHUP proxy` would), done once the serving
// process logs what it applied; a replacement is the control API's POST /restart.

const RELOAD_LOG_TIMEOUT_MS = 15_000;
const source = (file: string) => fileURLToPath(new URL(`../../${file}`, import.meta.url));

/** The control API's `process` (GET /state): after a replacement, the old process finishes in-flight work. */
interface ProcessState {
  pid: number;
  generation: number;
  predecessor?: { pid: number; exited?: { code: number | null; signal: string | null; afterMs: number } };
}

export interface SwitchyardMasterOptions {
  /** the config tree for variant 0 or 1 of the reloaded change; `data`, `proxy.host/port/control` are set here */
  config: (variant: number) => Record<string, unknown>;
  /** how long a replaced process may take to finish (proxy.shutdown.graceMs) */
  graceMs: number;
}

export async function startSwitchyardMaster(options: SwitchyardMasterOptions): Promise<ReloadableTarget> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-bench-master-'));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir);
  const [port, controlPort] = [await freePort(), await freePort()];
  const file = path.join(dir, 'switchyard.yaml');
  const write = (variant: number) => {
    const tree = options.config(variant);
    const proxy = { ...(tree.proxy as object), host: '127.0.0.1', port, control: { host: '127.0.0.1', port: controlPort }, shutdown: { graceMs: options.graceMs } };
    writeFileSync(file, stringify({ ...tree, data: path.join(dir, 'data'), proxy }));
  };
  write(0);
  const token = randomBytes(24).toString('hex');
  const proxyScript = compileScript(source('proxy/main.ts'), path.join(PROJECT_ROOT, '.bench-tmp', 'compiled', 'proxy-main.mjs'));
  const setpriv = findBinary('setpriv');
  const master = spawnNodeScript(
    'switchyard master',
    source('proxy/master.ts'),
    [],
    { SWITCHYARD_CONFIG: file, SWITCHYARD_ADMIN_TOKEN: token, LOG_LEVEL: 'info', [PROXY_SCRIPT_ENV]: proxyScript },
    setpriv ? [setpriv, '--pdeathsig', 'TERM'] : [],
    PROXY_NODE_ARGS,
  );
  const control = async (method: string, route: string): Promise<{ status: number; body: any }> => {
    const response = await request(`http://127.0.0.1:${controlPort}${route}`, { method, headers: { authorization: `Bearer ${token}` }, timeoutMs: 60_000 });
    return { status: response.status, body: JSON.parse(response.body) };
  };
  const state = async (): Promise<ProcessState | undefined> => (await control('GET', '/state').catch(() => undefined))?.body?.process;

  try {
    await waitForPort(port, master, 30_000);
    if (!(await pollUntil(async () => (await state()) !== undefined, 100, 15_000))) throw new Error(`the control API on ${controlPort} did not answer:\n${master.output()}`);
  } catch (error) {
    await master.stop();
    throw error;
  }

  // every process the master ran that ended, but the ones a replacement retired
  const watch = new ProcessWatch(master.process.pid);
  const retired = new Set<number>();
  let unplanned = 0;
  const look = () => (unplanned += watch.look().filter((pid) => !retired.has(pid)).length);
  const looking = setInterval(look, 250);
  const finishing = async () => {
    const info = await state();
    return info !== undefined && (info.predecessor === undefined || info.predecessor.exited !== undefined);
  };
  const settle = async () => void (await pollUntil(finishing, 250, options.graceMs + 15_000));

  return {
    url: `http://127.0.0.1:${port}`,
    async reload(n: number): Promise<EventOutcome> {
      write(n % 2);
      // the serving process logs what it applied (info: the reason this target logs at info)
      const logged = nextLine(master, /"msg":"config reload/, RELOAD_LOG_TIMEOUT_MS);
      if (!master.process.kill('SIGHUP')) return { ok: false, detail: 'the master is gone' };
      const line = await logged;
      if (line === undefined) return { ok: false, detail: `no "config reloaded" line within ${RELOAD_LOG_TIMEOUT_MS} ms` };
      const { msg, changes = [], notApplied = [] } = JSON.parse(line) as { msg: string; changes?: string[]; notApplied?: string[] };
      const ok = msg === 'config reloaded' && changes.length > 0 && notApplied.length === 0;
      return { ok, detail: ok ? changes.join('; ') : line };
    },
    async replace(): Promise<EventOutcome> {
      const waitFrom = Date.now();
      // one replacement at a time: the previous old process must have finished its clones
      if (!(await pollUntil(finishing, 250, options.graceMs + 15_000))) return { ok: false, detail: 'the previous replacement did not finish', waitedMs: Date.now() - waitFrom };
      const waitedMs = Date.now() - waitFrom;
      const before = await state();
      if (before) retired.add(before.pid);
      const answer = await control('POST', '/restart').catch((error: Error) => ({ status: 0, body: { error: error.message } }));
      if (answer.status !== 202) {
        if (before) retired.delete(before.pid);
        return { ok: false, detail: `POST /restart: ${answer.status} ${answer.body?.error ?? ''}`, waitedMs };
      }
      return { ok: true, detail: `pid ${answer.body.from.pid} -> ${answer.body.to.pid}`, waitedMs };
    },
    settle,
    restarts() {
      look(); // the master itself ending counts too
      return unplanned;
    },
    async stop() {
      clearInterval(looking);
      await master.stop();
      removeDir();
    },
  };
}
