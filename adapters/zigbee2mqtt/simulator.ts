import mqtt, { type MqttClient } from 'mqtt';

/**
 * A simulated Zigbee2MQTT network with one climate device: a Zigbee air-conditioner controller
 * (cooling and heating setpoints, system_mode, running_state, power and energy) in front of a
 * simulated room (1R1C, the same exact step as the planner's model). It publishes the retained
 * `zigbee2mqtt/bridge/devices`, the device state and availability, and applies `<name>/set` as
 * Zigbee2MQTT does. For the demo and tests; a real MQTT client.
 */
export interface Z2mRoomOptions {
  url: string;
  username?: string;
  password?: string;
  baseTopic?: string;
  name: string;
  rKPerKw: number;
  cKwhPerK: number;
  cop: number;
  maxElectricW: number;
  gainsW: number;
  /** Outdoor temperature at a time (ms). */
  outdoorC: (t: number) => number;
  initialC: number;
  coolingSetpointC: number;
  now?: () => number;
  /** How often the room is stepped and the state published (ms of real time). */
  reportMs?: number;
}

export function z2mDeviceDefinition(name: string) {
  const sp = (property: string, label: string) => ({ access: 7, label, name: property, property, type: 'numeric', unit: '°C', value_max: 30, value_min: 16, value_step: 0.5, description: `${label} setpoint` });
  return {
    friendly_name: name,
    ieee_address: '0x00124b0029ab5d01',
    type: 'Router',
    supported: true,
    disabled: false,
    interview_completed: true,
    definition: {
      model: 'SIM-AC-01',
      vendor: 'homeflex',
      description: 'Simulated Zigbee air-conditioner controller',
      exposes: [
        {
          type: 'climate',
          features: [
            sp('occupied_cooling_setpoint', 'Occupied cooling'),
            sp('occupied_heating_setpoint', 'Occupied heating'),
            { access: 5, label: 'Local temperature', name: 'local_temperature', property: 'local_temperature', type: 'numeric', unit: '°C' },
            { access: 7, label: 'System mode', name: 'system_mode', property: 'system_mode', type: 'enum', values: ['off', 'auto', 'cool', 'heat'] },
            { access: 5, label: 'Running state', name: 'running_state', property: 'running_state', type: 'enum', values: ['idle', 'heat', 'cool'] },
          ],
        },
        { access: 5, label: 'Power', name: 'power', property: 'power', type: 'numeric', unit: 'W' },
        { access: 1, label: 'Energy', name: 'energy', property: 'energy', type: 'numeric', unit: 'kWh' },
        { access: 1, label: 'Link quality', name: 'linkquality', property: 'linkquality', type: 'numeric', unit: 'lqi', value_max: 255, value_min: 0 },
      ],
    },
  };
}

export class Z2mRoomSimulator {
  private client?: MqttClient;
  private timer?: NodeJS.Timeout;
  tempC: number;
  coolingSetpointC: number;
  heatingSetpointC = 20;
  systemMode: 'off' | 'auto' | 'cool' | 'heat' = 'cool';
  running = false;
  energyKwh = 0;
  private last: number;
  readonly sets: Record<string, unknown>[] = [];

  constructor(private readonly o: Z2mRoomOptions) {
    this.tempC = o.initialC;
    this.coolingSetpointC = o.coolingSetpointC;
    this.last = this.now();
  }

  private now() {
    return this.o.now?.() ?? Date.now();
  }

  private get base() {
    return this.o.baseTopic ?? 'zigbee2mqtt';
  }

  async start() {
    const client = (this.client = mqtt.connect(this.o.url, { username: this.o.username, password: this.o.password, reconnectPeriod: 1000, will: { topic: `${this.base}/bridge/state`, payload: Buffer.from('{"state":"offline"}'), retain: true, qos: 1 } }));
    client.on('error', () => undefined);
    client.on('connect', () => {
      client.publish(`${this.base}/bridge/state`, '{"state":"online"}', { retain: true, qos: 1 });
      client.publish(`${this.base}/bridge/devices`, JSON.stringify([z2mDeviceDefinition(this.o.name)]), { retain: true, qos: 1 });
      client.publish(`${this.base}/${this.o.name}/availability`, '{"state":"online"}', { retain: true, qos: 1 });
      client.subscribe(`${this.base}/${this.o.name}/set`, { qos: 1 });
      this.publishState();
    });
    client.on('message', (_t, p) => {
      let cmd: Record<string, unknown>;
      try {
        cmd = JSON.parse(p.toString());
      } catch {
        return;
      }
      this.sets.push(cmd);
      const n = (v: unknown) => (typeof v === 'number' && v >= 16 && v <= 30 ? Math.round(v * 2) / 2 : undefined);
      this.coolingSetpointC = n(cmd.occupied_cooling_setpoint) ?? this.coolingSetpointC;
      this.heatingSetpointC = n(cmd.occupied_heating_setpoint) ?? this.heatingSetpointC;
      if (cmd.system_mode === 'off' || cmd.system_mode === 'auto' || cmd.system_mode === 'cool' || cmd.system_mode === 'heat') this.systemMode = cmd.system_mode;
      this.step();
      this.publishState();
    });
    this.timer = setInterval(() => {
      this.step();
      this.publishState();
    }, this.o.reportMs ?? 10_000);
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  }

  /** Advances the room to now with the power held since the last step, then lets the thermostat decide. */
  step() {
    const now = this.now();
    const dtH = Math.max(0, now - this.last) / 3_600_000;
    this.last = now;
    const electricKw = this.running ? this.o.maxElectricW / 1000 : 0;
    const sign = this.systemMode === 'heat' ? -1 : 1;
    if (dtH > 0) {
      const a = Math.exp(-dtH / (this.o.rKPerKw * this.o.cKwhPerK));
      this.tempC = a * this.tempC + (1 - a) * (this.o.outdoorC(now) + this.o.rKPerKw * (this.o.gainsW / 1000 - sign * this.o.cop * electricKw));
      this.energyKwh += electricKw * dtH;
    }
    // 0.3 K hysteresis, as a real controller
    if (this.systemMode === 'off') this.running = false;
    else if (this.systemMode === 'heat') this.running = this.running ? this.tempC < this.heatingSetpointC + 0.3 : this.tempC < this.heatingSetpointC - 0.3;
    else this.running = this.running ? this.tempC > this.coolingSetpointC - 0.3 : this.tempC > this.coolingSetpointC + 0.3;
  }

  publishState() {
    this.client?.publish(
      `${this.base}/${this.o.name}`,
      JSON.stringify({
        local_temperature: Math.round(this.tempC * 10) / 10,
        occupied_cooling_setpoint: this.coolingSetpointC,
        occupied_heating_setpoint: this.heatingSetpointC,
        system_mode: this.systemMode,
        running_state: this.running ? (this.systemMode === 'heat' ? 'heat' : 'cool') : 'idle',
        power: this.running ? this.o.maxElectricW : 0,
        energy: Math.round(this.energyKwh * 1000) / 1000,
        linkquality: 120,
      }),
      { retain: true },
    );
  }

  async stop() {
    if (this.timer) clearInterval(this.timer);
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    if (c.connected) await c.publishAsync(`${this.base}/${this.o.name}/availability`, '{"state":"offline"}', { retain: true, qos: 1 }).catch(() => undefined);
    await c.endAsync().catch(() => undefined);
  }
}
