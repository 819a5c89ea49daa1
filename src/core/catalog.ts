import { dsmr } from '../../adapters/dsmr/index.js';
import { smaEm } from '../../adapters/sma-em/index.js';
import { homeassistant } from '../../adapters/homeassistant/index.js';
import { homeassistantMeter } from '../../adapters/homeassistant/meter.js';
import { modbusAdapters } from '../../adapters/modbus/index.js';
import { ocppAdapters } from '../../adapters/ocpp/index.js';
import { shelly } from '../../adapters/shelly/index.js';
import { shellyEm } from '../../adapters/shelly/em.js';
import { simAdapters } from '../../adapters/sim/index.js';
import { dashboardPlugin } from '../../plugins/dashboard/part.js';
import { demoPlugin } from '../../plugins/demo/index.js';
import { haDiscovery } from '../../plugins/ha-discovery/index.js';
import { notifyPlugin } from '../../plugins/notify/index.js';
import { simMqtt } from '../../plugins/sim-mqtt/index.js';
import { forecastSourcesPlugin } from '../../plugins/forecasts/index.js';
import { tariffProvidersPlugin } from '../../plugins/tariffs/index.js';
import { tasmota } from '../../adapters/tasmota/index.js';
import { goe } from '../../adapters/goe/index.js';
import { homeflex } from '../../adapters/homeflex/index.js';
import { goeSim } from '../../adapters/goe/sim.js';
import { keba } from '../../adapters/keba/index.js';
import { openwb } from '../../adapters/openwb/index.js';
import { sgReady } from '../../adapters/sg-ready/index.js';
import { zigbee2mqtt } from '../../adapters/zigbee2mqtt/index.js';
import { fileTariff } from '../tariff/sources/file.js';
import { fixedTariff } from '../tariff/sources/fixed.js';
import { timeOfUseTariff } from '../tariff/sources/time_of_use.js';
import type { Catalog } from './config/compose.js';

/** Every adapter, plugin and tariff source this build of homeflex ships. */
export const builtinCatalog: Catalog = {
  adapters: [...simAdapters, ...ocppAdapters, ...modbusAdapters, tasmota, shelly, shellyEm, zigbee2mqtt, homeassistant, homeassistantMeter, dsmr, smaEm, goe, goeSim, keba, openwb, sgReady, homeflex],
  plugins: [tariffProvidersPlugin, haDiscovery, simMqtt, notifyPlugin, demoPlugin, dashboardPlugin()],
  tariffSources: [fixedTariff, timeOfUseTariff, fileTariff, ...(tariffProvidersPlugin.tariffSources ?? []), ...(demoPlugin.tariffSources ?? [])],
  forecastSources: forecastSourcesPlugin.forecastSources ?? [],
};
