// @ts-check
import { defineAdapter, permanentError, retryableError, switchedScheduleSchema } from 'homeflex/sdk';

/**
 * @typedef {{ id: string, adapter: string, name?: string, circuit?: string,
 *   url: string, poll_s: number, timeout_ms: number, rated_power_w: number,
 *   schedule?: Record<string, unknown> }} SocketConfig
 * @typedef {{ on: boolean, power_w: number, energy_wh: number }} SocketStatus
 */

/**
 * A smart socket on the LAN that answers `GET <url>/status` with `{"on", "power_w", "energy_wh"}`
 * and switches on `POST <url>/relay` with `{"on": true|false}`.
 */
export const httpSocket = defineAdapter(
  /** @type {import('homeflex/sdk').AdapterDefinition<SocketConfig>} */ ({
    id: 'http_socket',
    description: 'A smart socket with a plain HTTP/JSON API (relay and energy meter)',
    configSchema: {
      required: ['url'],
      properties: {
        url: { type: 'string', pattern: '^https?://', description: 'Base URL of the socket, e.g. http://192.168.1.40' },
        poll_s: { type: 'number', minimum: 1, maximum: 3600, default: 10, description: 'How often the socket is read (s)' },
        timeout_ms: { type: 'integer', minimum: 100, maximum: 60000, default: 2000, description: 'How long one request may take' },
        rated_power_w: { type: 'number', minimum: 0, default: 2000, description: 'Power of the load when on (W), for planning' },
        schedule: switchedScheduleSchema,
      },
    },
    create(ctx, config) {
      const base = config.url.replace(/\/+$/, '');
      /** @type {boolean | undefined} */
      let on;
      /** @type {import('homeflex/sdk').MeterReading | undefined} */
      let last;
      /** @type {(() => void) | undefined} */
      let stopTimer;
      const inflight = new AbortController();

      /** @param {string} path @param {RequestInit} [init] @returns {Promise<SocketStatus>} */
      async function call(path, init) {
        let res;
        try {
          res = await fetch(`${base}${path}`, { ...init, signal: AbortSignal.any([inflight.signal, AbortSignal.timeout(config.timeout_ms)]) });
        } catch (err) {
          throw retryableError('unreachable', `socket ${config.id} at ${base} cannot be reached: ${/** @type {Error} */ (err).message}`, err);
        }
        if (res.status >= 400 && res.status < 500) throw permanentError('refused', `socket ${config.id} refused ${path}: HTTP ${res.status}`);
        if (!res.ok) throw retryableError('device_error', `socket ${config.id} answered ${path} with HTTP ${res.status}`);
        const body = /** @type {Partial<SocketStatus>} */ (await res.json().catch(() => ({})));
        if (typeof body.on !== 'boolean' || typeof body.power_w !== 'number') throw permanentError('bad_answer', `socket ${config.id}: ${path} did not answer {on, power_w, energy_wh}`);
        return /** @type {SocketStatus} */ (body);
      }

      /** @type {import('homeflex/sdk').Device} */
      const device = {
        id: config.id,
        name: config.name ?? config.id,
        adapter: 'http_socket',
        available: false,
        caps: {
          meter: { channels: ['device'], last: () => last },
          switch: {
            ratedPowerW: config.rated_power_w,
            isOn: () => on,
            async set(value) {
              const status = await call('/relay', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ on: value }) });
              seen(status);
            },
          },
        },
      };

      /** @param {SocketStatus} status */
      function seen(status) {
        const changed = !device.available || on !== status.on;
        if (!device.available) ctx.log.info({}, `socket ${config.id} is reachable`);
        device.available = true;
        device.error = undefined;
        on = status.on;
        last = { time: ctx.clock.now(), powerW: status.power_w, importWh: status.energy_wh, channel: 'device' };
        ctx.bus.emit('meter.reading', { deviceId: config.id, reading: last });
        if (changed) ctx.bus.emit('device.state', { deviceId: config.id, available: true });
      }

      async function poll() {
        try {
          seen(await call('/status'));
        } catch (err) {
          if (inflight.signal.aborted) return;
          const message = /** @type {Error} */ (err).message;
          // the log speaks when the state changes, not on every failed poll
          if (device.available || device.error === undefined) ctx.log.warn({}, message);
          device.available = false;
          device.error = message;
          ctx.bus.emit('device.state', { deviceId: config.id, available: false, error: message });
        }
      }

      return {
        devices: [device],
        async start() {
          // an unreachable socket does not fail the start: it shows unavailable and is polled again
          await poll();
          stopTimer = ctx.clock.every(config.poll_s * 1000, () => void poll());
        },
        async stop() {
          stopTimer?.();
          inflight.abort();
        },
      };
    },
  }),
);
