// The plugin's own test, run with `npm test` (node --test) after `npm install`: the contract kit
// against a stand-in socket that speaks the same HTTP/JSON as the real one, on 127.0.0.1.
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import { assertAdapterContract } from 'homeflex/testing';
import plugin from '../index.js';

let server;
let url;
const state = { on: false, energy_wh: 0 };

before(async () => {
  server = createServer((req, res) => {
    const answer = () => res.end(JSON.stringify({ on: state.on, power_w: state.on ? 1200 : 0, energy_wh: state.energy_wh }));
    if (req.url === '/status') return answer();
    if (req.url === '/relay' && req.method === 'POST') {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        state.on = JSON.parse(body).on === true;
        answer();
      });
      return;
    }
    res.statusCode = 404;
    res.end('{}');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${server.address().port}`;
});

after(() => new Promise((r) => server.close(r)));

test('the http_socket adapter keeps the homeflex contract', async () => {
  await assertAdapterContract({
    adapter: plugin.adapters[0],
    config: { url, poll_s: 1 },
    badConfigs: [
      { config: { url: 'ftp://socket.local' }, path: 'url' },
      { config: { url, poll_s: 0 }, path: 'poll_s' },
    ],
    unreachableConfig: { url: 'http://127.0.0.1:9', timeout_ms: 300 },
  });
});
