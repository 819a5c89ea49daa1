import { ApiError } from '../api/index.js';
import { access, type RouteModule } from '../core/http.js';
import { localIso } from './costs.js';
import { DAY, subjectId, subjectKind } from './records.js';
import { DEVICE_KINDS } from './savings.js';
import { withOtherSite } from './sites.js';
import { billView, monthWindow, siteBill } from './bill-service.js';
import { SITE_BASELINES, isDeviceKind, parseCostQuery, parseWindow, type MeteringService, type SiteBaseline } from './service.js';

/**
 * The metering API (FlatPeak field names): meter records in, costs and savings out.
 * Write errors name the record and field; one bad record never rejects the rest.
 */
export const meteringRoutes = (metering: MeteringService): RouteModule => (app, hub) => {
  const interval = async (req: { body: unknown }) => metering.ingestIntervals(req.body);
  app.put('/meters/interval', access('write'), interval);
  // the FlatPeak guides also POST single records here
  app.post('/meters/interval', access('write'), interval);

  const cumulative = async (req: { body: unknown }) => metering.ingestCumulative(req.body);
  app.put('/meters/cumulative/epoch', access('write'), cumulative);
  app.post('/meters/cumulative/epoch', access('write'), cumulative);

  app.get('/meters', access('read'), async () => ({
    object: 'list',
    location_id: hub.site.id,
    location_timezone: hub.site.timezone,
    currency_code: hub.site.currency,
    data: metering.store.subjects().map((s) => ({
      id: subjectId(s.subject),
      object: 'meter',
      kind: subjectKind(s.subject),
      records: s.rows,
      start_time: s.firstTime === null ? null : localIso(s.firstTime, hub.site.timezone),
      end_time: s.lastTime === null ? null : localIso(s.lastTime, hub.site.timezone),
    })),
  }));

  app.post<{ Params: { id: string }; Querystring: Record<string, unknown> }>('/costs/interval/:id', access('read'), async (req) => {
    const q = parseCostQuery(req.query, req.body, true);
    // another site in the same PostgreSQL database (docs/postgres.md)
    const other = await withOtherSite(metering, () => hub.tariffs, req.params.id, (s, id) => s.costs(id, { ...q, window: q.window! }));
    return other ?? metering.costs(req.params.id, { ...q, window: q.window! });
  });

  app.post<{ Params: { ref: string }; Querystring: Record<string, unknown> }>('/costs/session/:ref', access('read'), async (req) => {
    const q = parseCostQuery(req.query, req.body, false);
    return metering.sessionCosts(req.params.ref, q);
  });

  app.get<{ Params: { id: string }; Querystring: Record<string, unknown> }>('/savings/:id', access('read'), async (req) => {
    const q = req.query ?? {};
    for (const k of Object.keys(q)) if (!['start_time', 'end_time', 'kind', 'baseline'].includes(k)) throw new ApiError(400, 'invalid_parameter', `querystring.${k}: unknown parameter (known: start_time, end_time, kind, baseline)`, { field: `querystring.${k}` });
    let window = parseWindow({ start_time: q.start_time, end_time: q.end_time }, false, 'querystring');
    if (!window) {
      // neither given: the last 30 days
      const end = hub.clock.now();
      window = { start: end - 30 * DAY, end };
    }
    const kind = q.kind === undefined ? undefined : String(q.kind);
    if (kind !== undefined && !isDeviceKind(kind)) throw new ApiError(400, 'invalid_parameter', `querystring.kind: must be one of ${DEVICE_KINDS.join(', ')} (got "${kind}")`, { field: 'querystring.kind' });
    const baseline = q.baseline === undefined ? 'devices' : String(q.baseline);
    const known = ['devices', ...SITE_BASELINES];
    if (!known.includes(baseline)) throw new ApiError(400, 'invalid_parameter', `querystring.baseline: must be one of ${known.join(', ')} (got "${baseline}")`, { field: 'querystring.baseline' });
    if (baseline !== 'devices') {
      if (req.params.id !== hub.site.id) throw new ApiError(400, 'invalid_parameter', `querystring.baseline: ${baseline} replays the whole site; ask for the location "${hub.site.id}", not "${req.params.id}"`, { field: 'querystring.baseline' });
      if (kind !== undefined) throw new ApiError(400, 'invalid_parameter', 'querystring.kind: not with a site baseline (kind picks a device baseline)', { field: 'querystring.kind' });
      return metering.siteSavings(window, baseline as SiteBaseline);
    }
    return metering.savings(req.params.id, window, kind);
  });

  app.get<{ Params: { id: string }; Querystring: Record<string, unknown> }>('/bill/:id', access('read'), async (req) => {
    const q = req.query ?? {};
    for (const k of Object.keys(q)) if (!['month', 'start_time', 'end_time'].includes(k)) throw new ApiError(400, 'invalid_parameter', `querystring.${k}: unknown parameter (known: month, start_time, end_time)`, { field: `querystring.${k}` });
    if (req.params.id !== hub.site.id) throw new ApiError(404, 'not_found', `no location "${req.params.id}" (known: ${hub.site.id}); the bill is the site's`, { field: 'id' });
    const month = q.month === undefined ? undefined : String(q.month);
    if (month !== undefined && (q.start_time !== undefined || q.end_time !== undefined)) throw new ApiError(400, 'invalid_parameter', 'querystring.month: give month or start_time/end_time, not both', { field: 'querystring.month' });
    const window = month !== undefined ? monthWindow(month, hub.site.timezone, 'querystring.month') : parseWindow({ start_time: q.start_time, end_time: q.end_time }, false, 'querystring');
    if (!window) throw new ApiError(400, 'invalid_parameter', 'querystring.month: is required (YYYY-MM), or start_time and end_time', { field: 'querystring.month' });
    const { bill, measuredBy } = siteBill({ store: metering.store, site: hub.site, prices: () => hub.tariffs }, window);
    return billView(bill, hub.site, measuredBy, month);
  });
};
