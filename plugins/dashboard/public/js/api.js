/* global fetch, localStorage, TextDecoder, URLSearchParams, AbortController */
// The hub's HTTP API as the page uses it: bearer token from localStorage when there is one, errors
// as the API's {object:"error", code, message}, and the live event stream over fetch (EventSource
// cannot send an Authorization header).

const TOKEN_KEY = 'homeflex.token';

export class ApiError extends Error {
  constructor(status, body, path) {
    super(body?.message ?? `HTTP ${status} for ${path}`);
    this.status = status;
    this.code = body?.code ?? `http_${status}`;
    this.field = body?.field;
    this.path = path;
  }
}

export const getToken = () => localStorage.getItem(TOKEN_KEY) ?? '';
export const setToken = (token) => (token ? localStorage.setItem(TOKEN_KEY, token) : localStorage.removeItem(TOKEN_KEY));

/** Called with an ApiError whenever the hub answers 401, so the page can ask for the token. */
let onUnauthorized = () => undefined;
export const whenUnauthorized = (fn) => (onUnauthorized = fn);

function headers(extra) {
  const token = getToken();
  return { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra };
}

const url = (path, query) => {
  const q = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== null).map(([k, v]) => [k, String(v)])) : undefined;
  return `/api/v1${path}${q && [...q].length ? `?${q}` : ''}`;
};

async function request(method, path, { query, body } = {}) {
  const res = await fetch(url(path, query), {
    method,
    headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const err = new ApiError(res.status, json, path);
    if (res.status === 401) onUnauthorized(err);
    throw err;
  }
  return json;
}

export const api = {
  get: (path, query) => request('GET', path, { query }),
  post: (path, body, query) => request('POST', path, { body, query }),
  put: (path, body, query) => request('PUT', path, { body, query }),
  patch: (path, body, query) => request('PATCH', path, { body, query }),
  del: (path, query) => request('DELETE', path, { query }),
};

/**
 * The hub's Server-Sent Events, read over fetch so the token can go in a header. Reconnects with
 * backoff; `onStatus('live' | 'connecting' | 'offline')` drives the indicator in the header.
 */
export function liveEvents(onEvent, onStatus) {
  let abort;
  let retryMs = 1000;
  let timer;
  let stopped = false;
  // each connection attempt has a number, so an aborted one does not schedule a second reconnect
  let generation = 0;

  const dispatch = (block) => {
    let event = 'message';
    const data = [];
    for (const line of block.split(/\r\n|\r|\n/)) {
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'retry' && /^\d+$/.test(value)) retryMs = Number(value);
    }
    if (!data.length) return;
    let payload;
    try {
      payload = JSON.parse(data.join('\n'));
    } catch {
      return;
    }
    onEvent(event, payload);
  };

  const connect = async () => {
    if (stopped) return;
    const mine = ++generation;
    onStatus('connecting');
    abort = new AbortController();
    try {
      const res = await fetch(url('/events'), { headers: headers({ accept: 'text/event-stream' }), signal: abort.signal, cache: 'no-store' });
      if (res.status === 401) {
        onUnauthorized(new ApiError(401, await res.json().catch(() => undefined), '/events'));
        throw new Error('unauthorized');
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      onStatus('live');
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        const blocks = buffer.split(/\r\n\r\n|\n\n|\r\r/);
        buffer = blocks.pop();
        for (const block of blocks) dispatch(block);
      }
    } catch {
      // a dropped stream or a refused connection: both end in a reconnect below
    }
    if (stopped || mine !== generation) return;
    onStatus('offline');
    timer = setTimeout(connect, retryMs);
  };

  void connect();
  return {
    reconnect() {
      generation++;
      abort?.abort();
      clearTimeout(timer);
      timer = setTimeout(connect, 0);
    },
    stop() {
      stopped = true;
      abort?.abort();
      clearTimeout(timer);
    },
  };
}
