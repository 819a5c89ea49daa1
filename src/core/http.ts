import { timingSafeEqual, createHash } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { ApiError } from '../api/index.js';
import type { HubServices } from './services.js';

/** A module that adds endpoints under /api/v1, or under its own `prefix` ('' = the site root, for the dashboard). */
export type RouteModule = ((app: FastifyInstance, hub: HubServices) => void | Promise<void>) & { prefix?: string };

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);
export const isLoopbackHost = (host: string) => host === 'localhost' || LOOPBACK.has(host);

/** Constant-time comparison of bearer tokens (hashing first makes the lengths equal). */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export const errorBody = (err: ApiError) => ({
  object: 'error' as const,
  type: err.type,
  code: err.code,
  message: err.message,
  ...(err.details ?? {}),
});

/** Turns fastify's schema-validation message into one that names the field. */
function validationError(err: { validation?: { instancePath?: string; message?: string; params?: Record<string, unknown> }[]; validationContext?: string }): ApiError {
  const v = err.validation?.[0];
  const where = err.validationContext ?? 'body';
  const missing = v?.params?.missingProperty as string | undefined;
  const extra = v?.params?.additionalProperty as string | undefined;
  const path = (v?.instancePath ?? '').replace(/^\//, '').replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.');
  const field = [where === 'body' ? '' : where, path, missing ?? extra ?? ''].filter(Boolean).join('.') || where;
  const message = extra ? `unknown field "${extra}"` : missing ? 'is required' : (v?.message ?? 'is invalid');
  return new ApiError(400, 'invalid_parameter', `${field}: ${message}`, { field });
}

export async function createHttpServer(hub: HubServices, modules: RouteModule[]): Promise<FastifyInstance> {
  const { http } = hub.config;
  if (!isLoopbackHost(http.host) && !http.token) {
    throw new Error(`http.host is ${http.host} (not loopback) but no http.token is set: refusing to start`);
  }
  const app = Fastify({
    logger: false,
    bodyLimit: http.body_limit_bytes,
    ajv: { customOptions: { allErrors: false, coerceTypes: 'array', removeAdditional: false, useDefaults: true } },
    // a URL fastify cannot decode is refused before routing: in the API's error shape too
    frameworkErrors: (err, _req, reply) => {
      const status = err.statusCode && err.statusCode < 500 ? err.statusCode : 400;
      void (reply as FastifyReply).status(status).send(errorBody(new ApiError(status, err.code === 'FST_ERR_BAD_URL' ? 'bad_url' : 'invalid_request', err.message)));
    },
  });

  app.addHook('onRequest', async (req: FastifyRequest) => {
    if (!req.url.startsWith('/api/')) return;
    const auth = req.headers.authorization;
    const bearer = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
    const loopbackClient = LOOPBACK.has(req.socket.remoteAddress ?? '');
    const isWrite = req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'OPTIONS';
    if (http.token) {
      // with a token, every write needs it, and reads need it from anywhere but this machine
      if ((isWrite || !loopbackClient) && !tokenMatches(bearer, http.token)) {
        throw new ApiError(401, 'unauthorized', 'a valid "Authorization: Bearer <http.token>" header is required');
      }
    } else if (!loopbackClient) {
      throw new ApiError(401, 'unauthorized', 'no http.token is configured, so only this machine may use the API');
    }
  });

  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    let apiErr: ApiError;
    const e = err as { validation?: unknown; statusCode?: number; code?: string; message?: string };
    if (err instanceof ApiError) apiErr = err;
    else if (e.validation) apiErr = validationError(e as Parameters<typeof validationError>[0]);
    else if (e.statusCode && e.statusCode < 500) {
      const code = e.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'body_too_large' : e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'unsupported_media_type' : 'invalid_request';
      const message = code === 'invalid_request' && /JSON/i.test(e.message ?? '') ? `body: not valid JSON (${e.message})` : (e.message ?? 'bad request');
      apiErr = new ApiError(e.statusCode, code, message);
    } else {
      hub.log.error({ err, url: req.url, method: req.method }, 'request failed');
      apiErr = new ApiError(500, 'internal_error', 'internal error; the hub log has the details');
    }
    reply.status(apiErr.status).send(errorBody(apiErr));
  });

  app.setNotFoundHandler((req, reply) => {
    const err = new ApiError(404, 'not_found', `no endpoint ${req.method} ${req.url.split('?')[0]}`);
    reply.status(404).send(errorBody(err));
  });

  for (const mod of modules) await app.register(async (scope) => mod(scope, hub), { prefix: mod.prefix ?? '/api/v1' });
  return app;
}
