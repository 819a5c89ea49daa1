import { simAdapters } from '../../adapters/sim/index.js';
import { fixedTariff } from '../tariff/sources/fixed.js';
import type { Catalog } from './config/compose.js';

/** Every adapter, plugin and tariff source this build of homeflex ships. */
export const builtinCatalog: Catalog = {
  adapters: [...simAdapters],
  plugins: [],
  tariffSources: [fixedTariff],
};
