// The fleet-state channel between the supervisor and the proxies when REDIS_URL is set:
// one pub/sub channel for changes, one hash with the current state for proxies that start later.
// Both carry signed values (lib/fleet-signing.ts): the states of some workers and when they were set.

export const FLEET_CHANNEL = 'switchyard:fleet';
export const FLEET_STATE_KEY = 'switchyard:fleet:state';

/** What a proxy can do with a worker: route to it, stop sending new requests, or treat it as dead. */
export type ProxyWorkerState = 'ready' | 'draining' | 'down';

export const PROXY_WORKER_STATES: ReadonlySet<string> = new Set<ProxyWorkerState>(['ready', 'draining', 'down']);

/** Keeps the well-formed entries of a worker -> state map. */
export function validStates(raw: unknown): Record<string, ProxyWorkerState> {
  const states: Record<string, ProxyWorkerState> = {};
  if (typeof raw !== 'object' || raw === null) return states;
  for (const [worker, state] of Object.entries(raw)) {
    if (typeof state === 'string' && PROXY_WORKER_STATES.has(state)) states[worker] = state as ProxyWorkerState;
  }
  return states;
}
