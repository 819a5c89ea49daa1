import type { Hub } from '../../src/core/host.js';

/** JSON over the hub's real HTTP listener, as a client on this machine sends it. */
export async function api(hub: Hub, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> & { data?: unknown } }> {
  const res = await fetch(`${hub.url}/api/v1${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Polls `check` every 20 ms until it is truthy; fails naming `what` after `ms`. */
export async function until<T>(check: () => T | undefined | null | false | Promise<T | undefined | null | false>, what: string, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A stack trace or source path leaking into what a client sees. */
export const STACK_TRACE = /\n\s+at |\.ts:\d+|\.js:\d+|node_modules|\/work\/|file:\/\//;
