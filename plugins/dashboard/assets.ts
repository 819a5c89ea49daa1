import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

/** One file the dashboard serves, held in memory with its gzip form (a Pi serves it without touching the disk). */
export interface Asset {
  path: string;
  type: string;
  body: Buffer;
  /** The gzip form, made on the first request that accepts it (hub start stays fast). */
  gzip(): Buffer | undefined;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webmanifest': 'application/manifest+json',
  '.json': 'application/json',
};

/** Where the page's own files are: beside this module in the source tree, or found from dist/ after a build. */
export function publicDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'public'), join(here, '..', '..', '..', 'plugins', 'dashboard', 'public')];
  const found = candidates.find((d) => existsSync(join(d, 'index.html')));
  if (!found) throw new Error(`dashboard: no public/index.html in ${candidates.join(' or ')}`);
  return found;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) walk(full, out);
    else out.push(full);
  }
  return out;
}

function asset(path: string, body: Buffer, type: string): Asset {
  const compressible = /^(text|application\/(json|manifest)|image\/svg)/.test(type) && body.length > 512;
  const etag = `"${createHash('sha1').update(body).digest('base64url').slice(0, 16)}"`;
  let gzipped: Buffer | undefined;
  return { path, type, body, etag, gzip: () => (compressible ? (gzipped ??= gzipSync(body, { level: 9 })) : undefined) };
}

/**
 * Every file of the page by URL path: `public/` at the root (index.html also at `/`), and uPlot from
 * node_modules under `/vendor/` so nothing is copied or fetched from a CDN.
 */
export function loadAssets(dir = publicDir()): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const file of walk(dir)) {
    const type = TYPES[extname(file)];
    if (!type) continue;
    const path = '/' + relative(dir, file).split(sep).join('/');
    assets.set(path, asset(path, readFileSync(file), type));
  }
  const index = assets.get('/index.html');
  if (index) assets.set('/', { ...index, path: '/' });
  const uplotDir = dirname(createRequire(import.meta.url).resolve('uplot/package.json'));
  // the minified classic build: half the bytes of the ES module build, which ships unminified
  for (const [name, file] of [['uPlot.iife.min.js', 'dist/uPlot.iife.min.js'], ['uPlot.min.css', 'dist/uPlot.min.css']] as const) {
    const path = `/vendor/${name}`;
    assets.set(path, asset(path, readFileSync(join(uplotDir, file)), TYPES[extname(name)]));
  }
  return assets;
}
