import mqtt, { type MqttClient } from 'mqtt';

/**
 * A simulated Tasmota smart socket: a real MQTT client that speaks Tasmota's topics (LWT,
 * cmnd/POWER, stat/RESULT, stat/POWER, tele/STATE, tele/SENSOR, STATUS 10, TelePeriod) with an
 * appliance of fixed power behind it. For the demo and as the device peer in tests.
 */
export class TasmotaSimulator {
  private client?: MqttClient;
  on = false;
  /** The device's own ENERGY Total (kWh); EnergyReset sets it to 0 as the device would. */
  totalKwh: number;
  telePeriodS = 300;
  /** Every command received, as `<command> <payload>`. */
  readonly commands: string[] = [];
  private lastStep: number;
  private teleTimer?: NodeJS.Timeout;
  private teleDue = 0;

  constructor(
    private readonly options: { url: string; topic: string; ratedPowerW: number; totalKwh?: number; username?: string; password?: string; now?: () => number; autoTele?: boolean },
  ) {
    this.totalKwh = options.totalKwh ?? 0;
    this.lastStep = this.now();
  }

  private now() {
    return this.options.now?.() ?? Date.now();
  }

  private t(prefix: 'cmnd' | 'stat' | 'tele', leaf: string) {
    return `${prefix}/${this.options.topic}/${leaf}`;
  }

  get powerW() {
    return this.on ? this.options.ratedPowerW : 0;
  }

  async start() {
    const client = (this.client = mqtt.connect(this.options.url, {
      clientId: `DVES_${this.options.topic}`.slice(0, 23),
      username: this.options.username,
      password: this.options.password,
      reconnectPeriod: 500,
      will: { topic: this.t('tele', 'LWT'), payload: Buffer.from('Offline'), qos: 1, retain: true },
    }));
    client.on('connect', () => {
      client.subscribe(`cmnd/${this.options.topic}/#`, { qos: 1 }, () => {
        client.publish(this.t('tele', 'LWT'), 'Online', { qos: 1, retain: true });
        this.publishState();
      });
    });
    client.on('message', (topic, payload) => this.command(topic.split('/').pop() ?? '', payload.toString()));
    client.on('error', () => undefined);
    if (this.options.autoTele ?? true) {
      this.teleDue = this.now() + this.telePeriodS * 1000;
      this.teleTimer = setInterval(() => {
        if (this.now() >= this.teleDue) {
          this.teleDue = this.now() + this.telePeriodS * 1000;
          this.publishSensor();
        }
      }, 1000);
    }
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  }

  /** Integrates the appliance's power up to now. */
  private step() {
    const now = this.now();
    this.totalKwh += (this.powerW * (now - this.lastStep)) / 3_600_000_000;
    this.lastStep = now;
  }

  private command(cmd: string, payload: string) {
    this.commands.push(`${cmd} ${payload}`.trim());
    const upper = cmd.toUpperCase();
    if (upper === 'POWER' || upper === 'POWER1') {
      const p = payload.trim().toUpperCase();
      this.step();
      if (p === 'ON' || p === '1') this.on = true;
      else if (p === 'OFF' || p === '0') this.on = false;
      else if (p === 'TOGGLE' || p === '2') this.on = !this.on;
      const state = this.on ? 'ON' : 'OFF';
      this.client?.publish(this.t('stat', 'RESULT'), JSON.stringify({ POWER: state }));
      this.client?.publish(this.t('stat', 'POWER'), state);
    } else if (upper === 'TELEPERIOD') {
      const n = Number(payload);
      if (payload.trim() !== '' && Number.isFinite(n)) this.telePeriodS = n === 1 ? 300 : Math.max(10, Math.min(3600, Math.round(n)));
      this.teleDue = this.now() + this.telePeriodS * 1000;
      this.client?.publish(this.t('stat', 'RESULT'), JSON.stringify({ TelePeriod: this.telePeriodS }));
    } else if (upper === 'STATUS' && payload.trim() === '10') {
      this.client?.publish(this.t('stat', 'STATUS10'), JSON.stringify({ StatusSNS: this.sensor() }));
    } else if (upper === 'ENERGYRESET3' || upper === 'ENERGYTOTAL') {
      this.totalKwh = Number(payload) || 0;
    } else {
      this.client?.publish(this.t('stat', 'RESULT'), JSON.stringify({ Command: 'Unknown' }));
    }
  }

  private sensor() {
    this.step();
    const r = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;
    return {
      Time: new Date(this.now()).toISOString().slice(0, 19),
      ENERGY: {
        TotalStartTime: '2024-01-01T00:00:00',
        Total: r(this.totalKwh, 3),
        Yesterday: 0,
        Today: r(this.totalKwh, 3),
        Power: this.powerW,
        ApparentPower: this.powerW,
        ReactivePower: 0,
        Factor: this.on ? 1 : 0,
        Voltage: 230,
        Current: r(this.powerW / 230, 3),
      },
    };
  }

  publishSensor() {
    this.client?.publish(this.t('tele', 'SENSOR'), JSON.stringify(this.sensor()));
  }

  publishState() {
    this.client?.publish(this.t('tele', 'STATE'), JSON.stringify({ Time: new Date(this.now()).toISOString().slice(0, 19), UptimeSec: 1, POWER: this.on ? 'ON' : 'OFF' }));
  }

  /** Drops the connection without DISCONNECT, as a power cut would (the broker sends the LWT). */
  crash() {
    (this.client as unknown as { stream?: { destroy(): void } } | undefined)?.stream?.destroy();
  }

  async stop() {
    if (this.teleTimer) clearInterval(this.teleTimer);
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    // a clean shutdown of a real device: LWT Offline, then disconnect
    if (c.connected) await c.publishAsync(this.t('tele', 'LWT'), 'Offline', { qos: 1, retain: true }).catch(() => undefined);
    await c.endAsync().catch(() => undefined);
  }
}
