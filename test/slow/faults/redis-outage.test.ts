// Redis really stopped, killed and frozen under load, with the whole stack: test/helpers/store-outages.ts.
import { describeOutages } from '../../helpers/store-outages.ts';

describeOutages('Redis');
