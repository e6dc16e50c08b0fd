// Hosts made of Linux network namespaces, for tests of a site that spans several machines: a
// bridge in the root namespace on a private /24 (address .254, where the test process and the
// shared servers sit), and one namespace per host with `lo` up and a veth to the bridge (.1, .2,
// ...). No default route anywhere: traffic stays among these namespaces and the root's bridge.
//
// Names carry a run id (`sy<run>-a`, `sy<run>-br`) so a leftover of a crashed run never collides;
// each run owns a temp dir (owner.pid, owned-dirs.ts) and a start-up sweep removes the namespaces
// and links of every run whose owner is gone. Needs root and iproute2 (`ip`).
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { isProcessAlive } from '../../lib/process-alive.ts';
import { cleanUpOrphans, ownedTempDir } from './owned-dirs.ts';

const execFileAsync = promisify(execFile);
const DIR_PREFIX = 'switchyard-netns-';
const RUN_FILE = 'run';
/** `sy` + 5 base-36 characters: the run; link names stay within the kernel's 15 characters */
const NAME_PATTERN = /^sy([0-9a-z]{5})-[a-z0-9]+$/;
const SUBNET_PREFIX = '10.231';
const IP_TIMEOUT_MS = 10_000;
/** rounds of "kill whatever runs in the namespace" (PM2 may fork a replacement in between) */
const KILL_ROUNDS = 50;

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', timeout: IP_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'] });
}

function ipQuietly(args: string[]): void {
  try {
    ip(args);
  } catch {
    // already gone
  }
}

function namespaceNames(): string[] {
  return ip(['netns', 'list'])
    .split('\n')
    .map((line) => line.split(' ')[0])
    .filter(Boolean);
}

function linkNames(): string[] {
  return ip(['-o', 'link', 'show'])
    .split('\n')
    .map((line) => /^\d+: ([^:@]+)/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined);
}

function pidsIn(namespace: string): number[] {
  try {
    return ip(['netns', 'pids', namespace]).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** SIGKILLs everything running in the namespace until nothing is left (bounded: PM2 may fork meanwhile). */
function killEverythingIn(namespace: string): void {
  for (let round = 0; round < KILL_ROUNDS; round++) {
    const pids = pidsIn(namespace).filter((pid) => pid !== process.pid);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    execFileSync('sleep', ['0.05']);
  }
}

function deleteNamespace(namespace: string): void {
  killEverythingIn(namespace);
  ipQuietly(['netns', 'delete', namespace]);
}

/** Deletes every namespace and link of the given run (the veths go with their namespaces). */
function removeRun(run: string): void {
  const ours = (name: string) => NAME_PATTERN.exec(name)?.[1] === run;
  for (const namespace of namespaceNames().filter(ours)) deleteNamespace(namespace);
  for (const link of linkNames().filter(ours)) ipQuietly(['link', 'delete', link]);
}

function runOf(dir: string): string | undefined {
  try {
    return readFileSync(path.join(dir, RUN_FILE), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Runs whose owner process is alive (their namespaces are in use). */
function liveRuns(): Set<string> {
  const live = new Set<string>();
  for (const name of readdirSync(os.tmpdir()).filter((entry) => entry.startsWith(DIR_PREFIX))) {
    const dir = path.join(os.tmpdir(), name);
    const run = runOf(dir);
    let owner = 0;
    try {
      owner = Number(readFileSync(path.join(dir, 'owner.pid'), 'utf8'));
    } catch {
      // being created
    }
    if (run && owner > 0 && isProcessAlive(owner)) live.add(run);
  }
  return live;
}

/**
 * Removes what earlier runs left behind: the dirs of dead owners with their namespaces and links,
 * and any `sy<run>-*` namespace or link whose run has no live owner (a dir deleted by hand).
 */
export function sweepLeftovers(): void {
  cleanUpOrphans(DIR_PREFIX, (dir) => {
    const run = runOf(dir);
    if (run) removeRun(run);
    rmSync(dir, { recursive: true, force: true });
  });
  const live = liveRuns();
  const stale = new Set<string>();
  for (const name of [...namespaceNames(), ...linkNames()]) {
    const run = NAME_PATTERN.exec(name)?.[1];
    if (run && !live.has(run)) stale.add(run);
  }
  for (const run of stale) removeRun(run);
}

/** A /24 of 10.231.0.0/16 that no address or route of this machine uses yet. */
function freeSubnet(): string {
  const used = ip(['-4', '-o', 'addr', 'show']) + ip(['-4', 'route', 'show']);
  for (let attempt = 0; attempt < 100; attempt++) {
    const subnet = `${SUBNET_PREFIX}.${1 + Math.floor(Math.random() * 250)}`;
    if (!used.includes(`${subnet}.`)) return subnet;
  }
  throw new Error(`no free /24 in ${SUBNET_PREFIX}.0.0/16`);
}

export interface NetnsHost {
  /** the host's name (a, b, ...) */
  name: string;
  /** the network namespace its processes run in */
  namespace: string;
  /** its address on the bridge */
  address: string;
  /** the root namespace's end of its veth: down = the host's cable pulled */
  link: string;
}

export class NetnsNetwork {
  private removed = false;
  private readonly onExit = () => this.removeNow();
  private readonly onSignal = (signal: NodeJS.Signals) => {
    this.removeNow();
    process.exit(signal === 'SIGINT' ? 130 : 143); // the other exit handlers (servers, dirs) run too
  };

  private constructor(
    readonly run: string,
    /** a temp dir this run owns (owner.pid): room for the hosts' data */
    readonly dir: string,
    readonly bridge: string,
    /** the root namespace's address on the bridge: where the test process and shared servers are reached */
    readonly bridgeAddress: string,
    readonly cidr: string,
    readonly hosts: NetnsHost[],
  ) {
    process.once('exit', this.onExit);
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
  }

  /** Sweeps leftovers of earlier runs, then builds the bridge and one namespace per host name. */
  static create(hostNames: string[]): NetnsNetwork {
    if (process.getuid?.() !== 0) throw new Error('network namespaces need root (ip netns add): run the multi-host tests as root');
    if (hostNames.length === 0 || hostNames.length > 200) throw new Error('expected 1 to 200 host names');
    for (const name of hostNames) if (!/^[a-z][a-z0-9]{0,5}$/.test(name)) throw new Error(`host name ${name}: expected 1-6 lowercase letters and digits`);
    sweepLeftovers();
    const run = randomBytes(8).readBigUInt64BE().toString(36).slice(-5).padStart(5, '0');
    const dir = ownedTempDir(DIR_PREFIX);
    writeFileSync(path.join(dir, RUN_FILE), run);
    const subnet = freeSubnet();
    const hosts = hostNames.map((name, index) => ({ name, namespace: `sy${run}-${name}`, address: `${subnet}.${index + 1}`, link: `sy${run}-${name}` }));
    const network = new NetnsNetwork(run, dir, `sy${run}-br`, `${subnet}.254`, `${subnet}.0/24`, hosts);
    try {
      network.build();
    } catch (error) {
      network.removeNow();
      throw error;
    }
    return network;
  }

  private build(): void {
    ip(['link', 'add', this.bridge, 'type', 'bridge']);
    ip(['addr', 'add', `${this.bridgeAddress}/24`, 'dev', this.bridge]);
    ip(['link', 'set', this.bridge, 'up']);
    for (const host of this.hosts) {
      ip(['netns', 'add', host.namespace]);
      ip(['-n', host.namespace, 'link', 'set', 'lo', 'up']);
      ip(['link', 'add', host.link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.namespace]);
      ip(['link', 'set', host.link, 'master', this.bridge, 'up']);
      ip(['-n', host.namespace, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0']);
      ip(['-n', host.namespace, 'link', 'set', 'eth0', 'up']);
    }
  }

  host(name: string): NetnsHost {
    const host = this.hosts.find((candidate) => candidate.name === name);
    if (!host) throw new Error(`no host ${name} (hosts: ${this.hosts.map((each) => each.name).join(', ')})`);
    return host;
  }

  /** Spawns `command` inside the host's namespace (`ip netns exec`: the pid is the command's own). */
  spawnIn(hostName: string, command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.host(hostName).namespace, command, ...args], options);
  }

  /** Runs a command inside the host's namespace to its end (killed after timeoutMs, default 10 s); resolves with its stdout. */
  async execIn(hostName: string, command: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<string> {
    const { stdout } = await execFileAsync('ip', ['netns', 'exec', this.host(hostName).namespace, command, ...args], {
      encoding: 'utf8',
      env: options.env,
      timeout: options.timeoutMs ?? IP_TIMEOUT_MS,
      killSignal: 'SIGKILL',
    });
    return stdout;
  }

  /** The processes running in the host's namespace now. */
  pids(hostName: string): number[] {
    return pidsIn(this.host(hostName).namespace);
  }

  /** A crashed host: SIGKILLs every process in its namespace. */
  killAll(hostName: string): void {
    killEverythingIn(this.host(hostName).namespace);
  }

  /** Cuts the host off the bridge (its cable pulled): nothing reaches it, it reaches nothing but itself. */
  cut(hostName: string): void {
    ip(['link', 'set', this.host(hostName).link, 'down']);
  }

  /** Undoes cut(). */
  reconnect(hostName: string): void {
    ip(['link', 'set', this.host(hostName).link, 'up']);
  }

  /** Kills every process in every namespace, deletes the namespaces, links and the run's dir. */
  remove(): void {
    this.removeNow();
  }

  private removeNow(): void {
    if (this.removed) return;
    this.removed = true;
    process.off('exit', this.onExit);
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    removeRun(this.run);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
