import { adminToken } from '../lib/admin-token.ts';
import { reachableAt } from '../lib/site.ts';
import { ConfigError, loadConfig, type SwitchyardConfig } from '../lib/config.ts';

/** No API call waits longer than this for its answer. */
const CALL_TIMEOUT_MS = 10_000;

/** A call that could not be made or was refused; `exitCode` is what the command exits with. */
export class SupervisorCallError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

export interface SupervisorAnswer<T> {
  status: number;
  body: T;
}

/** An address the API listens on, as a client reaches it (a wildcard address means this host). */
function baseUrlOf({ host, port }: { host: string; port: number }): string {
  return `http://${reachableAt(host, port, host === '::' ? '::1' : '127.0.0.1')}`;
}

/**
 * The running supervisor's API (supervisor.host:port of the config) with the admin token; or,
 * with peer 'proxy', the local proxy's control API (proxy.control.host:port).
 */
export class SupervisorClient {
  readonly baseUrl: string;

  private constructor(
    readonly config: SwitchyardConfig,
    private readonly token: string,
    /** what the messages call the other end */
    private readonly peer: 'supervisor' | 'proxy',
    baseUrl?: string,
  ) {
    this.baseUrl = baseUrl ?? baseUrlOf(peer === 'proxy' ? config.proxy.control : config.supervisor);
  }

  /** The same API of another host's supervisor (a site of several hosts), with the same token. */
  at(baseUrl: string): SupervisorClient {
    return new SupervisorClient(this.config, this.token, this.peer, baseUrl);
  }

  /** From the config in use ($SWITCHYARD_CONFIG) and the admin token; a problem with either is exit 78. */
  static fromConfig(peer: 'supervisor' | 'proxy' = 'supervisor'): SupervisorClient {
    try {
      const config = loadConfig();
      return new SupervisorClient(config, adminToken(config.data).token, peer);
    } catch (error) {
      if (error instanceof ConfigError) throw new SupervisorCallError(error.message, 78);
      throw error;
    }
  }

  /** The parsed JSON answer of a 2xx; anything else is a SupervisorCallError (exit 1) naming it. */
  async call<T = unknown>(method: 'GET' | 'POST', route: string, options: { acceptStatus?: number[]; timeoutMs?: number } = {}): Promise<SupervisorAnswer<T>> {
    const url = `${this.baseUrl}${route}`;
    const timeoutMs = options.timeoutMs ?? CALL_TIMEOUT_MS;
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, { method, headers: { authorization: `Bearer ${this.token}` }, signal: AbortSignal.timeout(timeoutMs) });
      text = await response.text();
    } catch (error) {
      const reason = (error as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : String((error as Error).cause ?? (error as Error).message);
      throw new SupervisorCallError(`cannot reach the ${this.peer} at ${url}: ${reason}`, 1);
    }
    if (!response.ok && !options.acceptStatus?.includes(response.status)) throw new SupervisorCallError(`${refusalReason(text)} (HTTP ${response.status})`, 1);
    try {
      return { status: response.status, body: JSON.parse(text) as T };
    } catch {
      throw new SupervisorCallError(`the ${this.peer} at ${url} answered something other than JSON: ${text.slice(0, 200)}`, 1);
    }
  }
}

/** What a refusal says: the API's `{"error": ...}` text, else the body as it is (shortened). */
function refusalReason(text: string): string {
  try {
    const { error } = JSON.parse(text) as { error?: unknown };
    if (typeof error === 'string' && error) return error;
  } catch {
    // not JSON: the text itself says it
  }
  return text.slice(0, 500) || 'no reason given';
}

/** Runs `work` with a client; a SupervisorCallError becomes its message on stderr and its exit code. */
export async function withSupervisor(work: (client: SupervisorClient) => Promise<number>, peer: 'supervisor' | 'proxy' = 'supervisor'): Promise<number> {
  try {
    return await work(SupervisorClient.fromConfig(peer));
  } catch (error) {
    if (!(error instanceof SupervisorCallError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return error.exitCode;
  }
}
