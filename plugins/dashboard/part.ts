import type { FastifyReply, FastifyRequest } from 'fastify';
import { stringify } from 'yaml';
import { ApiError } from '../../src/api/index.js';
import { access, type RouteModule } from '../../src/core/http.js';
import { redactConfig } from '../../src/core/routes.js';
import type { HubPart, HubServices, PartFactory } from '../../src/core/services.js';
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

function serve(asset: Asset, req: FastifyRequest, reply: FastifyReply) {
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
function dashboardInfo(hub: HubServices) {
  const { site, http, planner } = hub.config;
  return {
    object: 'dashboard',
    site: {
      id: site.id,
      name: site.name,
      timezone: site.timezone,
      currency: site.currency,
      grid: { max_import_w: site.grid?.max_import_w ?? null, max_export_w: site.grid?.max_export_w ?? null },
      circuits: site.circuits,
    },
    time: new Date(hub.clock.now()).toISOString(),
    token_required_for_writes: Boolean(http.token),
    planner,
    devices: hub.registry.all().map((d) => {
      const config = hub.registry.entry(d.id)?.config;
      return { id: d.id, yaml: config ? stringify(redactConfig(config), { lineWidth: 100 }) : null };
    }),
  };
}

/**
 * The web dashboard: serves the page at `/` (plain HTML, ES modules and CSS from `public/`, uPlot from
 * node_modules), a Server-Sent Events stream at `/api/v1/events`, and `/api/v1/dashboard`.
 * The page reads everything else from the hub's ordinary API, with the same bearer-token rules.
 */
export function dashboardPart(options: LiveFeedOptions = {}): PartFactory {
  return (hub: HubServices): HubPart => {
    const assets = loadAssets();
    const feed = new LiveFeed(hub, options);
    const routes: RouteModule = Object.assign(
      (app: Parameters<RouteModule>[0]) => {
        for (const asset of assets.values()) app.get(asset.path, access('public'), (req, reply) => serve(asset, req, reply));
        app.get('/api/v1/dashboard', access('read'), async () => dashboardInfo(hub));
        app.get('/api/v1/events', access('read'), (req, reply) => {
          if (feed.clientCount >= feed.maxClients) {
            throw new ApiError(503, 'too_many_streams', `at most ${feed.maxClients} event streams may be open at once; close another tab`);
          }
          reply.hijack();
          feed.open(reply.raw);
        });
        // open streams would keep fastify.close() waiting for ever
        app.addHook('preClose', async () => feed.stop());
      },
      { prefix: '' },
    );
    return {
      name: 'dashboard',
      routes,
      start: async () => feed.start(),
      stop: async () => feed.stop(),
    };
  };
}
