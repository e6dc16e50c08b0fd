import { homedir } from 'node:os';
import path from 'node:path';
import pm2 from 'pm2';

/** One PM2-managed process, as the supervisor needs it. */
export interface Pm2Process {
  pmId: number;
  name: string;
  pid: number;
  /** online, launching, stopping, stopped, errored */
  status: string;
  /** SWITCHYARD_WORKER_INDEX (the ecosystem's instance_var), for worker apps */
  instance: number | undefined;
  restarts: number;
}

/** A message a process sent to PM2's bus (`process.send({ type: 'process:msg', data })`). */
export interface Pm2ProcessMessage {
  /** the PM2 app's name and id (PM2 does not pass the app's env here) */
  name: string;
  pmId: number;
  data: unknown;
}

export interface Pm2ProcessEvent {
  /** online, exit, restart, stop, 'restart overlimit', ... */
  event: string;
  process: Pm2Process;
}

type Callback<T> = (error: Error | null, result: T) => void;

/** The part of pm2's programmatic API (an instance of `pm2.custom`) that we use. */
interface Pm2Api {
  connect(callback: Callback<unknown>): void;
  disconnect(): void;
  list(callback: Callback<RawProcess[]>): void;
  restart(process: number | string, callback: Callback<unknown>): void;
  start(options: object, callback: Callback<unknown>): void;
  stop(process: number | string, callback: Callback<unknown>): void;
  delete(process: number | string, callback: Callback<unknown>): void;
  scale(app: string, count: string, callback: Callback<unknown>): void;
  launchBus(callback: Callback<Bus>): void;
  killDaemon(callback: Callback<unknown>): void;
}

type RawEnv = Record<string, unknown> & { name?: string; pm_id?: number; status?: string; restart_time?: number };
interface RawProcess {
  name?: string;
  pid?: number;
  pm_id?: number;
  pm2_env?: RawEnv;
}
interface RawEvent {
  event: string;
  process: RawEnv & { pid?: number };
}
interface RawMessage {
  data?: unknown;
  process?: { name?: string; pm_id?: number };
}
interface Bus {
  on(event: string, handler: (packet: any) => void): void;
}

const INSTANCE_VAR = 'SWITCHYARD_WORKER_INDEX';

function toProcess(env: RawEnv, pid: number | undefined): Pm2Process {
  const instance = env[INSTANCE_VAR] ?? env.NODE_APP_INSTANCE;
  return {
    pmId: Number(env.pm_id),
    name: String(env.name),
    pid: pid ?? 0,
    status: String(env.status),
    instance: instance === undefined ? undefined : Number(instance),
    restarts: Number(env.restart_time ?? 0),
  };
}

export function pm2Home(env: Record<string, string | undefined> = process.env): string {
  return env.PM2_HOME ?? path.join(homedir(), '.pm2');
}

/**
 * A promise-shaped client of one PM2 daemon (the one of PM2_HOME: under `npm start` that is
 * pm2-runtime's own, under `pm2 start` the user's daemon). Connecting starts a daemon if none runs.
 */
export class Pm2Client {
  private readonly api: Pm2Api;
  private bus: Promise<Bus> | undefined;

  constructor(home = pm2Home()) {
    const Custom = (pm2 as unknown as { custom: new (options: object) => Pm2Api }).custom;
    this.api = new Custom({ pm2_home: home });
  }

  private call<T>(run: (callback: Callback<T>) => void): Promise<T> {
    return new Promise((resolve, reject) => run((error, result) => (error ? reject(error) : resolve(result))));
  }

  connect(): Promise<unknown> {
    return this.call((callback) => this.api.connect(callback));
  }

  disconnect(): void {
    this.api.disconnect();
  }

  async list(): Promise<Pm2Process[]> {
    const raw = await this.call<RawProcess[]>((callback) => this.api.list(callback));
    return raw.filter((entry) => entry.pm2_env).map((entry) => toProcess({ ...entry.pm2_env!, pm_id: entry.pm_id }, entry.pid));
  }

  /** Stops the process (SIGINT, then SIGKILL after the app's kill_timeout) and starts it again. */
  async restart(nameOrId: number | string): Promise<void> {
    await this.call((callback) => this.api.restart(nameOrId, callback));
  }

  async start(app: object): Promise<void> {
    await this.call((callback) => this.api.start(app, callback));
  }

  async stop(nameOrId: string | number): Promise<void> {
    await this.call((callback) => this.api.stop(nameOrId, callback));
  }

  async delete(nameOrId: string | number): Promise<void> {
    await this.call((callback) => this.api.delete(nameOrId, callback));
  }

  /**
   * Starts `count` more processes of a running app as copies of its first one (PM2's `scale +n`):
   * each gets the lowest free instance index and, with `increment_var`, the highest port plus one.
   */
  async addInstances(app: string, count: number): Promise<void> {
    await this.call((callback) => this.api.scale(app, `+${count}`, callback));
  }

  /** PM2's event bus, subscribed once however many handlers listen. */
  private launchBus(): Promise<Bus> {
    this.bus ??= this.call<Bus>((callback) => this.api.launchBus(callback));
    return this.bus;
  }

  /** Lifecycle events of every process (PM2's bus "process:event"). */
  async onProcessEvent(handler: (event: Pm2ProcessEvent) => void): Promise<void> {
    const bus = await this.launchBus();
    bus.on('process:event', (packet: RawEvent) =>
      handler({ event: packet.event, process: toProcess(packet.process, packet.process.pid as number | undefined) }),
    );
  }

  /** Messages processes send to the bus (PM2's "process:msg"); `data` is whatever they sent. */
  async onProcessMessage(handler: (message: Pm2ProcessMessage) => void): Promise<void> {
    const bus = await this.launchBus();
    bus.on('process:msg', (packet: RawMessage) =>
      handler({ name: String(packet.process?.name), pmId: Number(packet.process?.pm_id), data: packet.data }),
    );
  }

  async killDaemon(): Promise<void> {
    await this.call((callback) => this.api.killDaemon(callback));
  }
}
