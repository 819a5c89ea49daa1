import mqtt, { type MqttClient } from 'mqtt';

/**
 * A stand-in openWB series 2 wallbox in secondary mode ("Nur Ladepunkt": its internal chargepoint
 * driven by a controller over MQTT), written from openWB's published software 2.x topics and from
 * nothing of homeflex's `openwb` adapter, which it must not import. The topics are those openWB's own
 * primary uses to drive a secondary (github.com/openWB/core, `modules/chargepoints/external_openwb/
 * chargepoint_module.py`: `set_current`, `phases_to_use` + `trigger_phase_switch`, the
 * `global_data` heartbeat; the read side `openWB/internal_chargepoint/<n>/get/…` with the
 * `ChargepointState` fields) and openWB's rule that a write to `openWB/set/<path>` is checked and then
 * published, retained, as `openWB/<path>` (`helpermodules/setdata.py`). It simulates the car behind
 * the socket: it draws the current set on the phases in use.
 */

export interface OpenWbStandinOptions {
  /** The internal chargepoint number (0, or 1 for the second point of an openWB Duo). */
  num?: number;
  now?: () => number;
  phases?: 1 | 3;
  voltage?: number;
  carMaxW?: number;
  /** The car's SoC (%) as the wallbox's SoC module reports it, or undefined. */
  socPct?: number;
}

export class OpenWbStandin {
  plugged = false;
  /** data/set_current (A), 0 = no charging. */
  setCurrentA = 0;
  /** Phases in use (phases_to_use after a trigger_phase_switch). */
  phasesInUse: 1 | 3;
  phasesToUse: 1 | 3;
  importedWh = 5_000_000;
  socPct?: number;
  carMaxW: number;
  /** Every accepted write: [time, sub-topic, value]. */
  readonly writes: [number, string, unknown][] = [];
  /** Refused writes with the reason (not republished). */
  readonly refused: [string, string][] = [];
  /** The last heartbeat received (global_data). */
  heartbeat?: unknown;
  /** When the phases in use changed and to what. */
  readonly phaseChanges: [number, 1 | 3][] = [];
  private client?: MqttClient;
  private readonly num: number;
  private readonly now: () => number;
  private readonly phases: 1 | 3;
  private readonly voltage: number;
  private lastTick: number;

  constructor(options: OpenWbStandinOptions = {}) {
    this.num = options.num ?? 0;
    this.now = options.now ?? Date.now;
    this.phases = options.phases ?? 3;
    this.phasesInUse = this.phases;
    this.phasesToUse = this.phases;
    this.voltage = options.voltage ?? 230;
    this.carMaxW = options.carMaxW ?? 11_000;
    this.socPct = options.socPct;
    this.lastTick = this.now();
  }

  powerW(): number {
    if (!this.plugged || this.setCurrentA < 6) return 0;
    return Math.min(this.carMaxW, this.setCurrentA * this.voltage * this.phasesInUse);
  }

  tick() {
    const t = this.now();
    this.importedWh += (this.powerW() * Math.max(0, t - this.lastTick)) / 3_600_000;
    this.lastTick = t;
  }

  plug(plugged: boolean) {
    this.tick();
    this.plugged = plugged;
    void this.publishAll();
  }

  private get getPrefix() {
    return `openWB/internal_chargepoint/${this.num}/get`;
  }

  /** The `ChargepointState` fields a secondary publishes (retained), as JSON. */
  values(): Record<string, unknown> {
    this.tick();
    const p = this.powerW();
    const amps = p > 0 ? Math.round((p / this.voltage / this.phasesInUse) * 100) / 100 : 0;
    const currents = [amps, this.phasesInUse === 3 ? amps : 0, this.phasesInUse === 3 ? amps : 0];
    return {
      power: Math.round(p),
      powers: currents.map((a) => Math.round(a * this.voltage)),
      currents,
      voltages: [this.voltage, this.voltage, this.voltage],
      imported: Math.round(this.importedWh),
      exported: 0,
      phases_in_use: this.phasesInUse,
      plug_state: this.plugged,
      charge_state: p > 0,
      fault_state: 0,
      fault_str: 'Kein Fehler.',
      soc: this.plugged ? this.socPct ?? 0 : 0,
      vehicle_id: '',
      serial_number: '0815',
    };
  }

  async publishAll(): Promise<void> {
    const client = this.client;
    if (!client?.connected) return;
    await Promise.all(Object.entries(this.values()).map(([k, v]) => client.publishAsync(`${this.getPrefix}/${k}`, JSON.stringify(v), { retain: true, qos: 1 })));
  }

  /** Checks one write to openWB/set/internal_chargepoint/<n>/data/<key>; returns the refusal or undefined. */
  private check(key: string, value: unknown): string | undefined {
    switch (key) {
      case 'set_current':
        return typeof value === 'number' && (value === 0 || (value >= 6 && value <= 32)) ? undefined : 'set_current must be 0 or 6..32 A';
      case 'phases_to_use':
        return value === 1 || value === 3 ? undefined : 'phases_to_use must be 1 or 3';
      case 'trigger_phase_switch':
        return typeof value === 'boolean' ? undefined : 'trigger_phase_switch must be a boolean';
      case 'parent_cp':
      case 'cp_interruption_duration':
        return undefined;
      default:
        return `unknown key ${key}`;
    }
  }

  async connect(brokerUrl: string): Promise<void> {
    this.client = mqtt.connect(brokerUrl, { clientId: `openwb-standin-${this.num}-${process.pid}-${Math.random().toString(16).slice(2, 8)}`, reconnectPeriod: 200 });
    const client = this.client;
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    const setPrefix = `openWB/set/internal_chargepoint/${this.num}/data/`;
    client.on('message', (topic, payload) => {
      let value: unknown;
      try {
        value = JSON.parse(payload.toString());
      } catch {
        this.refused.push([topic, 'not JSON']);
        return;
      }
      if (topic === 'openWB/set/internal_chargepoint/global_data') {
        this.heartbeat = value;
        return;
      }
      if (!topic.startsWith(setPrefix)) return;
      const key = topic.slice(setPrefix.length);
      const bad = this.check(key, value);
      if (bad) {
        this.refused.push([topic, bad]);
        return;
      }
      this.tick();
      this.writes.push([this.now(), key, value]);
      if (key === 'set_current') this.setCurrentA = value as number;
      if (key === 'phases_to_use') this.phasesToUse = value as 1 | 3;
      if (key === 'trigger_phase_switch' && value === true && this.phases === 3 && this.phasesToUse !== this.phasesInUse) {
        this.phasesInUse = this.phasesToUse;
        this.phaseChanges.push([this.now(), this.phasesInUse]);
      }
      // setdata: the checked value is published, retained, without "set/"
      void client.publishAsync(`openWB/internal_chargepoint/${this.num}/data/${key}`, JSON.stringify(value), { retain: true, qos: 1 }).then(() => this.publishAll());
    });
    await client.subscribeAsync([`${setPrefix}+`, 'openWB/set/internal_chargepoint/global_data'], { qos: 1 });
    await this.publishAll();
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    await c?.endAsync().catch(() => undefined);
  }
}
