import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Hub } from '../../src/core/host.js';
import { createLogger } from '../../src/core/logging.js';
import { storeCommand } from '../../src/core/store/cli.js';
import { deviceSubject, flagsOf, type RowOp } from '../../src/metering/records.js';
import { MeterStore } from '../../src/metering/store.js';
import { runCommand } from '../peers/cli-run.js';

const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 5);
const ev = deviceSubject('ev');
const put = (k: number): RowOp => ({ op: 'put', subject: ev, start: T0 + k * MIN, end: T0 + (k + 1) * MIN, flags: flagsOf('IMPORT', 'IMPORT'), value: 1, confidence: 1, session: null, ref: null });

async function site() {
  const dir = mkdtempSync(join(tmpdir(), 'hf-store-cli-'));
  const file = join(dir, 'site.yaml');
  writeFileSync(file, 'site: { id: home }\nstorage: { dir: ./data }\nhttp: { port: 0 }\n');
  const store = await MeterStore.open(join(dir, 'data', 'metering'));
  const starts: number[] = [];
  const log = join(dir, 'data', 'metering', encodeURIComponent(ev), '2026-01.log');
  for (let b = 0; b < 3; b++) {
    starts.push(existsSync(log) ? statSync(log).size : 0);
    await store.write(Array.from({ length: 10 }, (_, i) => put(b * 10 + i)));
  }
  await store.close();
  return { dir, file, log, middle: starts[1] };
}

async function run(...argv: string[]) {
  const { code, all } = await runCommand(storeCommand, argv);
  return { code, out: all };
}

const flip = (file: string, offset: number) => {
  const b = readFileSync(file);
  b[offset] ^= 1;
  writeFileSync(file, b);
};

describe('homeflex store check and repair', () => {
  it('check lists the damaged range (file, offset, records, time range) and exits 1; repair moves it aside, keeping every frame after it', async () => {
    const { file, log, middle } = await site();
    expect(await run('check', '--config', file)).toMatchObject({ code: 0, out: expect.stringContaining('no damage found') });
    flip(log, middle + 40);
    const before = readFileSync(log);
    const checked = await run('check', '--config', file);
    expect(checked.code).toBe(1);
    expect(checked.out).toContain(`DAMAGED ${log} at byte ${middle} `);
    expect(checked.out).toContain('10 records, 2026-01-05T00:10:00.000Z to 2026-01-05T00:20:00.000Z; still in place');
    // check changes nothing
    expect(readFileSync(log).equals(before)).toBe(true);

    const repaired = await run('repair', '--config', file);
    expect(repaired.code, repaired.out).toBe(0);
    expect(repaired.out).toContain(`kept in ${log}.damaged-${middle}`);
    const store = await MeterStore.open(join(file, '..', 'data', 'metering'), { readOnly: true });
    expect(store.intervals(ev, T0, T0 + 60 * MIN).n).toBe(20);
    await store.close();
    // the bytes set aside keep the site flagged until the user deals with them
    const after = await run('check', '--config', file);
    expect(after.code).toBe(1);
    expect(after.out).toContain(`kept in ${log}.damaged-${middle}`);
    rmSync(`${log}.damaged-${middle}`);
    rmSync(`${log}.damaged-${middle}.json`);
    expect((await run('check', '--config', file)).code).toBe(0);
  });

  it('both refuse to run while a hub uses the storage', async () => {
    const { file, dir } = await site();
    const hub = new Hub({ configFile: file, logger: createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }) }) });
    await hub.start();
    try {
      for (const action of ['check', 'repair']) {
        const r = await run(action, '--config', file);
        expect(r.code).toBe(2);
        expect(r.out).toContain(`${join(dir, 'data', 'hub.lock')}: a homeflex (pid ${process.pid}, started `);
        expect(r.out).toContain(`stop it before homeflex store ${action}`);
      }
    } finally {
      await hub.stop();
    }
    expect((await run('check', '--config', file)).code).toBe(0);
  });

  it('reports a state file with a section of the wrong shape', async () => {
    const { file, dir } = await site();
    writeFileSync(join(dir, 'data', 'state.json'), JSON.stringify({ schema_version: 2, limits: [] }));
    const r = await run('check', '--config', file);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`STATE ${join(dir, 'data', 'state.json')}: section "limits" must be an object, not a list`);
  });
});
