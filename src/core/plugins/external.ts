import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import semver from 'semver';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node, type Pair } from 'yaml';
import { SDK_VERSION, type PluginDefinition } from '../../api/index.js';
import type { Catalog, ExternalPlugin } from '../config/compose.js';
import type { ConfigProblem } from '../config/load.js';

/** A plugin the site file names that the hub would not load, with where the file names it. */
export interface RefusedPlugin {
  index: number;
  key: 'package' | 'path';
  spec: string;
  problem: ConfigProblem;
}

export interface SitePlugins {
  /** The base catalog with every loaded plugin's adapters, tariff sources and forecast sources added. */
  catalog: Catalog;
  loaded: ExternalPlugin[];
  refused: RefusedPlugin[];
}

interface Named {
  index: number;
  key: 'package' | 'path';
  spec: string;
  line: number;
  col: number;
}

/** The `plugins[]` entries that name a package or a folder, with their place in the file. */
function namedPlugins(text: string): Named[] {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length || !isMap(doc.contents)) return [];
  const plugins = doc.contents.items.find((p: Pair) => isScalar(p.key) && p.key.value === 'plugins')?.value;
  if (!isSeq(plugins)) return [];
  const out: Named[] = [];
  plugins.items.forEach((item, index) => {
    if (!isMap(item)) return;
    for (const key of ['package', 'path'] as const) {
      const pair = item.items.find((p: Pair) => isScalar(p.key) && p.key.value === key);
      if (!pair || !isScalar(pair.value) || typeof pair.value.value !== 'string') continue;
      const pos = lines.linePos((pair.key as Node).range?.[0] ?? 0);
      out.push({ index, key, spec: pair.value.value, line: pos.line, col: pos.col });
    }
  });
  return out;
}

/** Where the hub itself is installed: packages installed next to it are found too. */
const HUB_DIR = dirname(fileURLToPath(import.meta.url));

/** `node_modules/<name>` in `from` or any folder above it. */
function findPackage(name: string, from: string): string | undefined {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

interface PackageJson {
  name?: string;
  version?: string;
  main?: string;
  exports?: unknown;
  engines?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

/** The file `import` loads for the package's root: `exports["."]` (import or default), else `main`, else index.js. */
function entryOf(dir: string, pkg: PackageJson): string {
  const pick = (e: unknown): string | undefined => {
    if (typeof e === 'string') return e;
    if (e && typeof e === 'object') {
      const o = e as Record<string, unknown>;
      if ('.' in o) return pick(o['.']);
      return pick(o.import ?? o.node ?? o.default);
    }
    return undefined;
  };
  return join(dir, pick(pkg.exports) ?? pkg.main ?? 'index.js');
}

const PLUGIN_ID = /^[a-z][a-z0-9_-]*$/;

/** Why `value` is not a plugin definition, or undefined when it is one. */
function notAPlugin(value: unknown): string | undefined {
  if (!value || typeof value !== 'object') return 'its module exports no plugin (export default definePlugin({...}))';
  const d = value as Partial<PluginDefinition>;
  if (typeof d.id !== 'string' || !PLUGIN_ID.test(d.id)) return `its plugin id ${JSON.stringify(d.id)} must be lower-case letters, digits, - or _`;
  if (typeof d.description !== 'string') return 'its plugin has no description';
  if (!d.configSchema || typeof d.configSchema !== 'object') return 'its plugin has no configSchema (use {} for none)';
  for (const list of ['adapters', 'tariffSources', 'forecastSources'] as const) {
    if (d[list] !== undefined && !Array.isArray(d[list])) return `its ${list} is not an array`;
  }
  if (d.mountAtRoot) return 'mountAtRoot is for the hub\'s built-in plugins only';
  return undefined;
}

/**
 * Finds, checks and imports the plugins a site file names by `package` or `path`, and adds what
 * they contribute to the catalog. A plugin is refused, with the place in the file, when it cannot
 * be found, declares no SDK range or one this hub does not satisfy, cannot be imported, exports no
 * plugin, or clashes with what is already there. The hub never installs anything: a package must
 * already be in a node_modules folder beside the site file (or above it), or beside the hub.
 */
export async function loadSitePlugins(text: string, file: string, base: Catalog): Promise<SitePlugins> {
  const siteDir = dirname(resolve(file));
  const display = basename(file);
  const catalog: Catalog = {
    adapters: [...base.adapters],
    plugins: [...base.plugins],
    tariffSources: [...base.tariffSources],
    forecastSources: [...(base.forecastSources ?? [])],
    external: [...(base.external ?? [])],
    refused: [],
  };
  const loaded: ExternalPlugin[] = [];
  const refused: RefusedPlugin[] = [];
  for (const named of namedPlugins(text)) {
    const what = `plugin ${named.key} "${named.spec}"`;
    const refuse = (message: string) =>
      refused.push({ index: named.index, key: named.key, spec: named.spec, problem: { file: display, line: named.line, col: named.col, path: `plugins[${named.index}].${named.key}`, message: `${what}: ${message}` } });
    const dir = named.key === 'path' ? resolve(siteDir, named.spec) : (findPackage(named.spec, siteDir) ?? findPackage(named.spec, HUB_DIR));
    if (!dir || !existsSync(dir) || !statSync(dir).isDirectory() || !existsSync(join(dir, 'package.json'))) {
      refuse(
        named.key === 'path'
          ? `no plugin folder with a package.json at ${dir}`
          : `is not installed (looked in node_modules beside ${display} and beside homeflex); install it with npm first: the hub never installs packages`,
      );
      continue;
    }
    let pkg: PackageJson;
    try {
      pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;
    } catch (err) {
      refuse(`its package.json cannot be read: ${(err as Error).message}`);
      continue;
    }
    const range = pkg.engines?.homeflex ?? pkg.peerDependencies?.homeflex;
    const label = `${pkg.name ?? named.spec}${pkg.version ? `@${pkg.version}` : ''}`;
    if (!range) {
      refuse(`${label} does not say which homeflex SDK it was built for: add "engines": { "homeflex": "^${SDK_VERSION}" } to its package.json`);
      continue;
    }
    if (!semver.validRange(range)) {
      refuse(`${label} declares homeflex SDK range "${range}", which is not a semver range`);
      continue;
    }
    if (!semver.satisfies(SDK_VERSION, range, { includePrerelease: true })) {
      refuse(`${label} was built for homeflex SDK ${range}, but this hub provides SDK ${SDK_VERSION}; install a version of the plugin made for it`);
      continue;
    }
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(entryOf(dir, pkg)).href)) as Record<string, unknown>;
    } catch (err) {
      refuse(`${label} could not be loaded: ${(err as Error).message}`);
      continue;
    }
    const def = (mod.default ?? mod.plugin) as PluginDefinition;
    const wrong = notAPlugin(def);
    if (wrong) {
      refuse(`${label}: ${wrong}`);
      continue;
    }
    const clash =
      (catalog.plugins.some((p) => p.id === def.id) && `plugin id "${def.id}" is taken`) ||
      (def.adapters ?? []).map((a) => catalog.adapters.some((x) => x.id === a.id) && `adapter "${a.id}" is taken`).find(Boolean) ||
      (def.tariffSources ?? []).map((t) => catalog.tariffSources.some((x) => x.type === t.type) && `tariff type "${t.type}" is taken`).find(Boolean) ||
      (def.forecastSources ?? []).map((f) => catalog.forecastSources!.some((x) => x.type === f.type) && `forecast source "${f.type}" is taken`).find(Boolean);
    if (clash) {
      refuse(`${label}: ${clash} (by the hub or an earlier plugin)`);
      continue;
    }
    const ext: ExternalPlugin = { key: named.key, spec: named.spec, dir, name: pkg.name ?? named.spec, version: pkg.version ?? '0.0.0', range, def, where: `${display}:${named.line}:${named.col} plugins[${named.index}].${named.key}` };
    catalog.plugins.push(def);
    catalog.adapters.push(...(def.adapters ?? []));
    catalog.tariffSources.push(...(def.tariffSources ?? []));
    catalog.forecastSources!.push(...(def.forecastSources ?? []));
    catalog.external!.push(ext);
    loaded.push(ext);
  }
  catalog.refused = refused;
  return { catalog, loaded, refused };
}
