import pino, { type Logger } from 'pino';
import type { SwitchyardConfig } from '../../lib/config.ts';
import { fleetKey } from '../../lib/fleet-signing.ts';
import { siteOf } from '../../lib/site.ts';
import { Fleet } from '../../supervisor/fleet.ts';
import { SiteView } from '../../supervisor/site-view.ts';

// Site views of several hosts in one process, over one real Redis, without PM2: each host's fleet
// starts with every worker ready, and tests set states by hand as health polls and drains would.

export const SITE_TEST_TOKEN = 'site-views-test-admin-token-0123456789';

export interface HostView {
  fleet: Fleet;
  view: SiteView;
}

/** Host `host`'s fleet (all ready) and site view; its supervisor URL is http://<host address>:8090 unless given. */
export function hostView(config: SwitchyardConfig, host: string, redisUrl: string, options: { supervisorUrl?: string; log?: Logger } = {}): HostView {
  const site = siteOf(config, { SWITCHYARD_HOST: host });
  const fleet = new Fleet(config, () => 0.5, site);
  for (const worker of fleet.all()) fleet.setState(worker, 'ready');
  const view = new SiteView({
    redisUrl,
    key: fleetKey(SITE_TEST_TOKEN),
    site,
    config: () => config,
    fleet,
    supervisorUrl: options.supervisorUrl ?? `http://${site.self.address}:8090`,
    recycles: () => [],
    log: options.log ?? pino({ level: 'silent' }),
  });
  return { fleet, view };
}

/** Every view reports, and has read the others' reports. */
export async function beat(...views: SiteView[]): Promise<void> {
  for (let round = 0; round < 2; round++) {
    for (const view of views) view.soon();
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}
