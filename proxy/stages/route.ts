import type { Lane, SwitchyardConfig } from '../../lib/config.ts';
import { createBalancer } from '../balancer.ts';
import type { Route } from '../exchange.ts';
import type { Pool } from '../pool.ts';
import type { Refusal } from './validate.ts';

/** Stage "route", built once: each lane's pool, balancer and priority. */
export function buildRoutes(config: SwitchyardConfig, pools: ReadonlyMap<string, Pool>): Record<Lane, Route> {
  return Object.fromEntries(
    Object.entries(config.lanes).map(([lane, laneConfig]) => [
      lane,
      { lane, pool: pools.get(laneConfig.pool)!, balancer: createBalancer(laneConfig.balance), priority: laneConfig.priority },
    ]),
  ) as Record<Lane, Route>;
}

/**
 * A WebSocket handshake also takes one of its pool's places for upgraded connections (and of
 * those, one of its client's), held until the client's socket closes.
 */
export function reserveUpgradePlace(route: Route, client: string, clientSocket: { once(event: 'close', listener: () => void): unknown }): Refusal | undefined {
  if (!route.pool.reserveUpgrade(client)) return { status: 503, reason: 'too many upgraded connections' };
  clientSocket.once('close', () => route.pool.releaseUpgrade(client));
  return undefined;
}
