import { stringify } from 'yaml';
import { ApiError, definePlugin, siteGridMeterId, type PluginContext, type PluginReply, type PluginRequest } from '../../src/api/index.js';
import { loadAssets, type Asset } from './assets.js';
import { LiveFeed, type LiveFeedOptions } from './live.js';

/**
 * What the page may load: its own files only. No inline script, no eval, no other origin, so an
 * injected device name could not run even if it reached the DOM as markup.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

function serve(asset: Asset, req: PluginRequest, reply: PluginReply) {
  reply
    .header('content-type', asset.type)
    .header('etag', asset.etag)
    // revalidate every time (a 304 is tiny) so an upgraded hub never serves a stale page
    .header('cache-control', 'no-cache')
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer');
  if (asset.type.startsWith('text/html')) reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
  if (req.headers['if-none-match'] === asset.etag) return reply.status(304).send();
  const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? '')) ? asset.gzip() : undefined;
  if (gzip) return reply.header('content-encoding', 'gzip').header('vary', 'accept-encoding').send(gzip);
  return reply.send(asset.body);
}

/** The site as the page needs it: names, zone, currency, limits, and each device's YAML (secrets redacted). */
function dashboardInfo(ctx: PluginContext) {
  const { site } = ctx.hub;
  const config = ctx.hub.config() as { http?: { token?: unknown }; planner?: unknown };
  return {
    object: 'dashboard',
    site: { id: site.id, name: site.name, timezone: site.timezone, currency: site.currency, grid: site.grid, circuits: site.circuits },
    time: new Date(ctx.clock.now()).toISOString(),
    token_required_for_writes: Boolean(config.http?.token),
    planner: config.planner,
    devices: ctx.hub.devices.list().map((d) => {
      const yaml = ctx.hub.devices.json(d.id)?.config;
      return { id: d.id, yaml: yaml ? stringify(yaml, { lineWidth: 100 }) : null };
    }),
  };
}

/** One live feed per hub, made with the routes and started with the plugin. */
const feeds = new WeakMap<PluginContext, LiveFeed>();

/** The site's own grid meter as the hub books it (site.grid_meter, else the first device with a grid channel in YAML order). */
function siteMeterOf(ctx: PluginContext): string | undefined {
  const config = ctx.hub.config() as { site?: { grid_meter?: string }; devices?: readonly { id: string }[] };
  return siteGridMeterId(config.site?.grid_meter, ctx.hub.devices.list(), (config.devices ?? []).map((d) => d.id));
}

/**
 * The web dashboard: serves the page at `/` (plain HTML, ES modules and CSS from `public/`, uPlot from
 * node_modules), a Server-Sent Events stream at `/api/v1/events`, and `/api/v1/dashboard`.
 * The page reads everything else from the hub's ordinary API, with the same bearer-token rules.
 * Runs unless the site file turns it off: `plugins: [{ id: dashboard, enabled: false }]`.
 */
export function dashboardPlugin(options: LiveFeedOptions = {}) {
  const feedFor = (ctx: PluginContext) => {
    let feed = feeds.get(ctx);
    if (!feed) {
      feed = new LiveFeed({ bus: ctx.bus, clock: ctx.clock, site: ctx.site, deviceJson: (id) => ctx.hub.devices.json(id), siteMeterId: () => siteMeterOf(ctx) }, options);
      feeds.set(ctx, feed);
    }
    return feed;
  };
  return definePlugin<Record<string, never>>({
    id: 'dashboard',
    description: 'The web dashboard at / (on by default; enabled: false turns it off)',
    configSchema: { properties: {} },
    enabledByDefault: true,
    mountAtRoot: true,
    routes(routes, ctx) {
      const assets = loadAssets();
      const feed = feedFor(ctx);
      for (const asset of assets.values()) routes.get(asset.path, 'public', (req, reply) => serve(asset, req, reply));
      routes.get('/api/v1/dashboard', 'read', async () => dashboardInfo(ctx));
      routes.get('/api/v1/events', 'read', (_req, reply) => {
        if (feed.clientCount >= feed.maxClients) {
          throw new ApiError(503, 'too_many_streams', `at most ${feed.maxClients} event streams may be open at once; close another tab`);
        }
        reply.hijack();
        feed.open(reply.raw);
      });
      // open streams would keep the HTTP server's close waiting for ever
      routes.onClose(() => feed.stop());
    },
    create(ctx) {
      const feed = feedFor(ctx);
      return {
        start: async () => feed.start(),
        stop: async () => feed.stop(),
      };
    },
  });
}
