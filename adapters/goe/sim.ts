import { DateTime } from 'luxon';
import { configSchema, defineAdapter, Hhmm, Type, type DeviceConfigBase, type Static } from '../../src/api/index.js';
import { GoeStandin } from './standin.js';

const GoeSimConfigSchema = Type.Object({
  host: Type.String({ default: '127.0.0.1' }),
  port: Type.Integer({ minimum: 1, maximum: 65535, default: 8091 }),
  serial: Type.String({ default: '000001' }),
  arrive: Hhmm({ default: '08:00', description: 'Local time the car plugs in' }),
  leave: Hhmm({ default: '18:00', description: 'Local time the car leaves' }),
  tick_s: Type.Number({ minimum: 0.1, maximum: 600, default: 10 }),
});
type GoeSimConfig = DeviceConfigBase & Static<typeof GoeSimConfigSchema>;

/**
 * The demo's go-e Charger: the go-e stand-in of the tests (written from go-e's API v2 documents, no
 * code shared with the `goe` adapter) serving the HTTP API v2 on this machine, with a car that plugs
 * in at `arrive` and leaves at `leave`. It makes no device of its own; a `goe` device reads and
 * commands it like a real unit.
 */
export const goeSim = defineAdapter<GoeSimConfig>({
  id: 'goe_sim',
  simulatesPeer: true,
  description: 'Simulated go-e Charger serving the local HTTP API v2 (read it with a goe device), with a car that plugs in and leaves every day',
  configSchema: configSchema(GoeSimConfigSchema),
  create(ctx, config) {
    const unit = new GoeStandin({ now: () => ctx.clock.now(), serial: config.serial });
    const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3));
    const [from, to] = [minutes(config.arrive), minutes(config.leave)];
    const home = () => {
      const d = DateTime.fromMillis(ctx.clock.now(), { zone: ctx.site.timezone });
      const m = d.hour * 60 + d.minute;
      return from <= to ? m >= from && m < to : m >= from || m < to;
    };
    let stopTick: (() => void) | undefined;
    const step = () => {
      const plugged = unit.keys.car !== 1;
      if (home() !== plugged) unit.plug(!plugged);
      else unit.tick();
    };
    return {
      devices: [],
      async start() {
        await unit.listen(config.port, config.host);
        ctx.log.info(`simulated go-e Charger serving the HTTP API v2 on http://${config.host}:${config.port}`);
        step();
        stopTick = ctx.clock.every(config.tick_s * 1000, step);
      },
      async stop() {
        stopTick?.();
        await unit.close();
      },
    };
  },
});
