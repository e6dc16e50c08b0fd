import type { SwitchyardSetup } from '../fleet/targets.ts';
import { BOT_CIDR } from './bots.ts';

/** Switchyard as its operator configures it for the stampede's fleet: the bots' CIDR, clones and bots on the clone pool. */
export const STAMPEDE_SWITCHYARD: SwitchyardSetup = {
  pools: { web: ['web'], clone: ['clone'] },
  config: {
    bots: { cidrs: [BOT_CIDR] },
    lanes: { clone: { pool: 'clone', balance: 'least-outstanding', priority: 0 }, bot: { pool: 'clone', balance: 'least-outstanding', priority: 1 } },
    pools: { clone: { queue: { max: 500, timeoutMs: 600_000 } } },
  },
};
