import { defineAdapter, setAvailability, type AdapterContext, type Device, type DeviceConfigBase, type EpochMs, type NodeFlexibility } from '../../src/api/index.js';

export interface HomeflexConfig extends DeviceConfigBase {
  url: string;
  token?: string;
  poll_s: number;
  timeout_ms: number;
  limits_valid_minutes: number;
}

/** Largest answer read from a child (a day of 15-minute slots and a few hundred needs fits well). */
const MAX_BODY = 2_000_000;

const num = (v: unknown, where: string): number => {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${where} is not a number`);
  return v;
};
const time = (v: unknown, where: string): EpochMs => {
  const t = typeof v === 'string' ? Date.parse(v) : NaN;
  if (Number.isNaN(t)) throw new Error(`${where} is not an RFC 3339 time`);
  return t;
};

/** Reads a child's `GET /flexibility` answer; errors name the field at fault. */
export function parseFlexibility(body: unknown): NodeFlexibility {
  const b = body as Record<string, unknown> | null;
  if (!b || typeof b !== 'object' || b.object !== 'flexibility') throw new Error('the answer is not a flexibility object (is the url a homeflex hub?)');
  if (typeof b.site_id !== 'string') throw new Error('site_id is missing');
  if (!Array.isArray(b.slots) || !Array.isArray(b.needs)) throw new Error('slots or needs is not a list');
  const slots = b.slots.map((s: Record<string, unknown>, i: number) => ({
    start: time(s?.start_time, `slots[${i}].start_time`),
    end: time(s?.end_time, `slots[${i}].end_time`),
    minW: num(s?.min_w, `slots[${i}].min_w`),
    maxW: num(s?.max_w, `slots[${i}].max_w`),
    plannedW: num(s?.planned_w, `slots[${i}].planned_w`),
  }));
  const needs = b.needs.map((n: Record<string, unknown>, i: number) => ({
    deviceId: String(n?.device_id),
    energyWh: num(n?.energy_wh, `needs[${i}].energy_wh`),
    from: time(n?.from, `needs[${i}].from`),
    until: time(n?.deadline, `needs[${i}].deadline`),
    maxW: num(n?.max_w, `needs[${i}].max_w`),
  }));
  return { siteId: b.site_id, slots, needs };
}

class ChildHub {
  readonly device: Device;
  private flex?: NodeFlexibility;
  private signature = '';
  private readonly base: string;

  constructor(private readonly ctx: AdapterContext, private readonly config: HomeflexConfig) {
    this.base = `${config.url.replace(/\/+$/, '')}/api/v1`;
    this.device = {
      id: config.id,
      name: config.name ?? config.id,
      adapter: 'homeflex',
      circuit: config.circuit,
      available: false,
      error: 'not read yet',
      caps: { node: { flexibility: () => (this.device.available ? this.flex : undefined), setImportLimit: (s) => this.setImportLimit(s) } },
    };
  }

  private async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const headers: Record<string, string> = {};
    if (this.config.token) headers.authorization = `Bearer ${this.config.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${this.base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(this.config.timeout_ms) });
    const text = await res.text();
    if (text.length > MAX_BODY) throw new Error(`${method} ${path}: the answer is larger than ${MAX_BODY} bytes`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new Error(`${method} ${path}: HTTP ${res.status} with a body that is not JSON: ${text.slice(0, 80)}`);
    }
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status}: ${(json as { message?: string }).message ?? text.slice(0, 200)}${res.status === 401 || res.status === 403 ? ' (is token the child\'s http.token?)' : ''}`);
    return json;
  }

  /** Reads the child's flexibility; availability follows (logged once per change). */
  async poll(): Promise<void> {
    try {
      const flex = parseFlexibility(await this.request('GET', '/flexibility'));
      this.flex = flex;
      // a new car or deadline re-plans the parent at once; energy delivered meanwhile is taken at its next regular re-plan
      const signature = JSON.stringify(flex.needs.map((n) => [n.deviceId, n.until]));
      const changedNeeds = signature !== this.signature;
      this.signature = signature;
      const becameAvailable = setAvailability(this.ctx, this.device, undefined, `child hub ${this.config.id} (${this.config.url})`);
      // new needs re-plan the parent (availability changes do so by themselves)
      if (changedNeeds && !becameAvailable) this.ctx.bus.emit('target.changed', { deviceId: this.device.id });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      setAvailability(this.ctx, this.device, `${(err as Error).message}${cause ? ` (${cause})` : ''}`, `child hub ${this.config.id} (${this.config.url})`);
    }
  }

  async setImportLimit(schedule: { start: EpochMs; watts: number }[]): Promise<void> {
    const flex = this.flex;
    if (!flex || !schedule.length) return;
    const validUntil = this.ctx.clock.now() + this.config.limits_valid_minutes * 60_000;
    const body = { schedule_import: schedule.map((e) => ({ timestamp: new Date(e.start).toISOString(), total_power_W: Math.max(0, Math.round(e.watts)) })), valid_until: new Date(validUntil).toISOString() };
    try {
      await this.request('PUT', `/limits/${encodeURIComponent(flex.siteId)}`, body);
    } catch (err) {
      setAvailability(this.ctx, this.device, `could not set its limits: ${(err as Error).message}`, `child hub ${this.config.id} (${this.config.url})`);
      throw err;
    }
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.ctx.clock.sleep(this.config.poll_s * 1000, signal).catch(() => undefined);
      if (!signal.aborted) await this.poll();
    }
  }
}

export const homeflex = defineAdapter<HomeflexConfig>({
  id: 'homeflex',
  description: 'A child homeflex hub as one device of an energy tree: reads its flexibility over the HTTP API, plans it as a flexible load and sends it its import limit per slot (PUT /limits with valid_until)',
  configSchema: {
    required: ['url'],
    properties: {
      url: { type: 'string', pattern: '^https?://', description: 'The child hub\'s address, e.g. http://floor1.local:8080 (the API is under /api/v1)' },
      token: { type: 'string', minLength: 1, description: 'The child\'s http.token (write access, for PUT /limits); write ${FLOOR1_TOKEN} to keep it out of the file' },
      poll_s: { type: 'number', minimum: 1, maximum: 3600, default: 30, description: 'How often the child\'s flexibility is read (s)' },
      timeout_ms: { type: 'integer', minimum: 200, maximum: 60000, default: 10000, description: 'Answer timeout of one request (ms); a PUT /limits waits for the child to re-plan' },
      limits_valid_minutes: { type: 'number', minimum: 1, maximum: 1440, default: 60, description: 'How long the limits sent to the child hold (valid_until); after it the child falls back to its site.grid.fallback_import_w unless the parent sent new ones' },
    },
  },
  create(ctx, config) {
    const child = new ChildHub(ctx, config);
    let loop: Promise<void> | undefined;
    return {
      devices: [child.device],
      async start(signal) {
        await child.poll();
        loop = child.run(signal);
      },
      async stop() {
        await loop;
      },
    };
  },
});
