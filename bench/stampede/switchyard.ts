import { deepMerge } from '../../proxy/testing.ts';
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

/** The same without clone sharing (issue 21): every clone is a worker's own pack or bundle, as before it. */
export const STAMPEDE_SWITCHYARD_UNSHARED: SwitchyardSetup = {
  ...STAMPEDE_SWITCHYARD,
  config: deepMerge(STAMPEDE_SWITCHYARD.config, { proxy: { cloneSharing: { enabled: false } } }),
};
