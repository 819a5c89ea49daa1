// @ts-check
import { definePlugin } from 'homeflex/sdk';
import { httpSocket } from './socket.js';

/**
 * The plugin: one adapter (`http_socket`) and one read-only route,
 * GET /api/v1/plugins/http-socket/sockets, listing this plugin's sockets.
 */
export default definePlugin({
  id: 'http-socket',
  description: 'Smart sockets that speak plain HTTP/JSON (GET /status, POST /relay)',
  configSchema: { properties: {} },
  adapters: [httpSocket],
  routes(routes, ctx) {
    routes.get('/sockets', 'read', () => ({
      object: 'list',
      data: ctx.hub.devices
        .list()
        .filter((d) => d.adapter === httpSocket.id)
        .map((d) => ({ id: d.id, available: d.available, on: d.caps.switch?.isOn() ?? null, power_w: d.caps.meter?.last()?.powerW ?? null })),
    }));
  },
});
