import { badRequest } from '../api/index.js';
import { access, type RouteModule } from '../core/http.js';
import { parseTime } from '../tariff/routes.js';
import type { ForecastService } from './service.js';
import { DAY, HOUR } from '../api/time.js';

/** The longest window GET /forecasts answers: the store keeps the forecasts of the last 35 days. */
const MAX_DAYS = 40;

/** `GET /forecasts?start_time&end_time`: PV and base load as made, as now forecast and as measured, with errors by lead time. */
export function forecastRoutes(service: ForecastService): RouteModule {
  return (app, hub) => {
    app.get<{ Querystring: Record<string, unknown> }>('/forecasts', access('read'), async (req) => {
      const q = req.query ?? {};
      for (const k of Object.keys(q)) if (k !== 'start_time' && k !== 'end_time') throw badRequest(k, 'unknown field (allowed: start_time, end_time)');
      for (const k of ['start_time', 'end_time']) if (Array.isArray(q[k])) throw badRequest(k, 'given more than once');
      const now = hub.clock.now();
      const start = q.start_time === undefined ? Math.floor(now / HOUR) * HOUR - 2 * DAY : parseTime('start_time', q.start_time);
      const end = q.end_time === undefined ? Math.floor(now / HOUR) * HOUR + 2 * DAY : parseTime('end_time', q.end_time);
      if (end <= start) throw badRequest('end_time', 'must be after start_time');
      if (end - start > MAX_DAYS * DAY) throw badRequest('end_time', `the window may be at most ${MAX_DAYS} days`);
      return { object: 'forecasts', location_id: hub.site.id, start_time: new Date(start).toISOString(), end_time: new Date(end).toISOString(), ...service.view(start, end) };
    });
  };
}
