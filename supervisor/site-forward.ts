import type { EventCursor } from './event-log.ts';
import type { SiteView } from './site-view.ts';

/** Marks a request one supervisor passed to another: it is answered there, never passed on again. */
export const FORWARDED_HEADER = 'x-switchyard-forwarded';
/** A supervisor that does not answer a passed-on action within this is reported as such. */
const FORWARD_TIMEOUT_MS = 10_000;

/** What another host's supervisor answered to an action passed to it. */
export interface ForwardedAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** One host's part of a site-wide action: where to follow it. */
export interface SitePart {
  host: string;
  supervisor: string;
  status: number;
  queued?: string[];
  alreadyPending?: string[];
  eventCursor?: EventCursor;
  error?: string;
}

/**
 * Passes a fleet action (POST <route>) to another host's supervisor with the admin token, and
 * returns its answer; an unreachable one is a 502 naming it. The other host's supervisor owns its
 * workers: their drains, leases and events are its own.
 */
export async function forwardAction(supervisorUrl: string, route: string, token: string): Promise<ForwardedAnswer> {
  try {
    const response = await fetch(`${supervisorUrl}${route}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, [FORWARDED_HEADER]: '1' },
      signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
    });
    const text = await response.text();
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = { error: text.slice(0, 200) };
    }
    return { status: response.status, body };
  } catch (error) {
    const reason = (error as Error).name === 'TimeoutError' ? `no answer within ${FORWARD_TIMEOUT_MS} ms` : String((error as Error).cause ?? (error as Error).message);
    return { status: 502, body: { error: `the supervisor at ${supervisorUrl} did not answer: ${reason}` } };
  }
}

/**
 * A worker action for a worker this supervisor does not run: the answer of the host that does
 * (with `host` and `supervisor` added, so a client can follow there), a 503 when that host is
 * gone, or undefined when no host reports the worker (the local 404 stands).
 */
export async function forwardWorkerAction(site: SiteView | undefined, worker: string, route: string, token: string): Promise<ForwardedAnswer | undefined> {
  const owner = site?.ownerOf(worker);
  if (!owner) return undefined;
  if (!owner.up || owner.supervisor === null) return { status: 503, body: { error: `${worker} runs on host ${owner.host}, which is gone (its supervisor stopped reporting)`, host: owner.host } };
  const answer = await forwardAction(owner.supervisor, route, token);
  return { status: answer.status, body: { ...answer.body, host: owner.host, supervisor: owner.supervisor } };
}

/**
 * A pool action on every other live host that runs the pool, in parallel; a host the config runs
 * the pool on that is gone is a 503 part (its workers are not covered), not left out.
 */
export async function forwardPoolAction(site: SiteView | undefined, pool: string, route: string, token: string): Promise<SitePart[]> {
  const hosts = (site?.liveHosts() ?? []).filter((host) => host.pools.has(pool));
  const gone = (site?.goneHostsOf(pool) ?? []).map(({ host, supervisor }) => ({
    host,
    supervisor: supervisor ?? '',
    status: 503,
    error: `host ${host} is gone (its supervisor stopped reporting): its workers of pool ${pool} are not covered`,
  }));
  const live = await Promise.all(
    hosts.map(async ({ host, supervisor }) => {
      const { status, body } = await forwardAction(supervisor, route, token);
      const list = (value: unknown) => (Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : undefined);
      return {
        host,
        supervisor,
        status,
        queued: list(body.queued),
        alreadyPending: list(body.alreadyPending),
        eventCursor: body.eventCursor as EventCursor | undefined,
        error: typeof body.error === 'string' ? body.error : undefined,
      };
    }),
  );
  return [...live, ...gone];
}
