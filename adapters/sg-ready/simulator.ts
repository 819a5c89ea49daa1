import mqtt, { type MqttClient } from 'mqtt';

/**
 * A simulated SG-Ready heat pump heating a hot-water tank, behind a Tasmota dual-relay module
 * (POWER1 → terminal A, POWER2 → terminal B) with a DS18B20 in the tank sleeve and an energy meter
 * on the supply: a real MQTT client speaking Tasmota's topics (LWT, cmnd/POWER<n>, stat/RESULT,
 * stat/POWER<n>, tele/STATE, tele/SENSOR). For the demo and as the peer in tests; it shares no code
 * with the `sg_ready` adapter.
 *
 * The heat pump's own controller, by SG-Ready state (A, B): 1/0 blocked: never runs; 0/0 normal:
 * heats when the tank is 5 K below 50 °C, up to 50 °C; 0/1 recommended: heats up to 55 °C; 1/1
 * forced: heats up to 62 °C.
 */
export interface HeatPumpSimOptions {
  url: string;
  topic: string;
  username?: string;
  password?: string;
  now?: () => number;
  /** Electric power while the compressor runs (W). */
  powerW?: number;
  /** Heating COP for hot water. */
  cop?: number;
  volumeL?: number;
  initialC?: number;
  lossWPerK?: number;
  ambientC?: number;
  /** Hot water drawn per day (kWh): two showers (07:00, 21:00) take 60 %, the rest spread from 08:00 to 20:00. */
  drawKwhPerDay?: number;
  /** Local hour offset from UTC for the draw-off times (demo: the site's zone offset). */
  utcOffsetH?: () => number;
  teleS?: number;
}

export class HeatPumpSimulator {
  private client?: MqttClient;
  relayA = false;
  relayB = false;
  tankC: number;
  totalKwh = 0;
  running = false;
  readonly commands: string[] = [];
  private last: number;
  private timer?: NodeJS.Timeout;
  private teleDue = 0;

  constructor(private readonly o: HeatPumpSimOptions) {
    this.tankC = o.initialC ?? 48;
    this.last = this.now();
  }

  private now() {
    return this.o.now?.() ?? Date.now();
  }

  get sgState(): 1 | 2 | 3 | 4 {
    return this.relayA ? (this.relayB ? 4 : 1) : this.relayB ? 3 : 2;
  }

  get powerW() {
    return this.running ? (this.o.powerW ?? 2000) : 0;
  }

  /** Advances the tank to now: heating, standing losses and draw-offs, and the controller's decision. */
  step() {
    const now = this.now();
    let dt = Math.max(0, now - this.last);
    this.last = now;
    const volume = this.o.volumeL ?? 200;
    const capWhPerK = volume * 1.163;
    const daily = this.o.drawKwhPerDay ?? 5.8;
    const offset = this.o.utcOffsetH?.() ?? 0;
    // integrate in steps of at most a minute so the thermostat's decisions stay fine-grained
    let t = now - dt;
    while (dt > 0) {
      const h = Math.min(dt, 60_000);
      const hour = (((t + h / 2) / 3_600_000 + offset) % 24 + 24) % 24;
      const drawW = (hour >= 7 && hour < 7.25) || (hour >= 21 && hour < 21.25) ? (0.3 * daily * 1000) / 0.25 : hour >= 8 && hour < 20 ? (0.4 * daily * 1000) / 12 : 0;
      const target = [0, 50, 55, 62][this.sgState - 1];
      if (this.sgState === 1) this.running = false;
      else if (this.tankC >= target) this.running = false;
      else if (this.sgState >= 3 || this.tankC < target - 5) this.running = true;
      const heatW = this.powerW * (this.o.cop ?? 2.8);
      const lossW = (this.o.lossWPerK ?? 1.5) * (this.tankC - (this.o.ambientC ?? 18));
      this.tankC += ((heatW - lossW - drawW) * (h / 3_600_000)) / capWhPerK;
      this.totalKwh += (this.powerW * h) / 3_600_000_000;
      t += h;
      dt -= h;
    }
  }

  private t(prefix: 'cmnd' | 'stat' | 'tele', leaf: string) {
    return `${prefix}/${this.o.topic}/${leaf}`;
  }

  async start() {
    const client = (this.client = mqtt.connect(this.o.url, {
      clientId: `DVES_${this.o.topic}`.slice(0, 23),
      username: this.o.username,
      password: this.o.password,
      reconnectPeriod: 500,
      will: { topic: this.t('tele', 'LWT'), payload: Buffer.from('Offline'), qos: 1, retain: true },
    }));
    client.on('connect', () => {
      client.subscribe(`cmnd/${this.o.topic}/#`, { qos: 1 }, () => {
        client.publish(this.t('tele', 'LWT'), 'Online', { qos: 1, retain: true });
        this.publishState();
        this.publishSensor();
      });
    });
    client.on('message', (topic, payload) => this.command(topic.split('/').pop() ?? '', payload.toString()));
    client.on('error', () => undefined);
    const teleMs = (this.o.teleS ?? 10) * 1000;
    this.teleDue = this.now() + teleMs;
    this.timer = setInterval(() => {
      this.step();
      if (this.now() >= this.teleDue) {
        this.teleDue = this.now() + teleMs;
        this.publishSensor();
      }
    }, 1000);
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  }

  private command(cmd: string, payload: string) {
    this.commands.push(`${cmd} ${payload}`.trim());
    const m = /^POWER([12])$/i.exec(cmd);
    if (!m) {
      this.client?.publish(this.t('stat', 'RESULT'), JSON.stringify({ Command: 'Unknown' }));
      return;
    }
    this.step();
    const p = payload.trim().toUpperCase();
    const key = m[1] === '1' ? 'relayA' : 'relayB';
    if (p === 'ON' || p === '1') this[key] = true;
    else if (p === 'OFF' || p === '0') this[key] = false;
    else if (p === 'TOGGLE' || p === '2') this[key] = !this[key];
    const state = this[key] ? 'ON' : 'OFF';
    this.client?.publish(this.t('stat', 'RESULT'), JSON.stringify({ [`POWER${m[1]}`]: state }));
    this.client?.publish(this.t('stat', `POWER${m[1]}`), state);
  }

  publishState() {
    this.client?.publish(this.t('tele', 'STATE'), JSON.stringify({ Time: new Date(this.now()).toISOString().slice(0, 19), POWER1: this.relayA ? 'ON' : 'OFF', POWER2: this.relayB ? 'ON' : 'OFF' }));
  }

  publishSensor() {
    this.step();
    const r = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;
    this.client?.publish(
      this.t('tele', 'SENSOR'),
      JSON.stringify({ Time: new Date(this.now()).toISOString().slice(0, 19), DS18B20: { Id: '01144B0A6EAA', Temperature: r(this.tankC, 1) }, TempUnit: 'C', ENERGY: { Total: r(this.totalKwh, 3), Power: this.powerW, Voltage: 230 } }),
    );
  }

  async stop() {
    if (this.timer) clearInterval(this.timer);
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    if (c.connected) await c.publishAsync(this.t('tele', 'LWT'), 'Offline', { qos: 1, retain: true }).catch(() => undefined);
    await c.endAsync().catch(() => undefined);
  }
}
