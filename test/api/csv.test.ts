import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CsvSyntaxError, parseCsv } from '../../src/api/index.js';
import { readSeries } from '../../src/backtest/read.js';
import { readPriceFile } from '../../src/tariff/sources/file.js';

const utf16le = (text: string) => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);

describe('parseCsv (csv-parse, shared by the file tariff and the backtest readers)', () => {
  it('honours quoting, drops a byte-order mark, skips blank and comment lines, and numbers the lines', () => {
    const { rows, delimiter } = parseCsv('\uFEFFstart,note,rate\n# a comment\n\n2026-01-05T00:00Z,"cheap, at night",0.2\n2026-01-05T01:00Z,"say ""hi""",0.3\n', { comments: true });
    expect(delimiter).toBe(',');
    expect(rows).toEqual([
      { cells: ['start', 'note', 'rate'], line: 1 },
      { cells: ['2026-01-05T00:00Z', 'cheap, at night', '0.2'], line: 4 },
      { cells: ['2026-01-05T01:00Z', 'say "hi"', '0.3'], line: 5 },
    ]);
  });

  it('reads UTF-16 files by their byte-order mark and guesses a semicolon separator', () => {
    const { rows, delimiter } = parseCsv(utf16le('start;price\n2026-01-05 00:00;100,5\n'));
    expect(delimiter).toBe(';');
    expect(rows[1].cells).toEqual(['2026-01-05 00:00', '100,5']);
  });

  it('locates an unclosed quote at its line', () => {
    let err: unknown;
    try {
      parseCsv('a,b\n1,2\n3,"4\n');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CsvSyntaxError);
    expect((err as CsvSyntaxError).line).toBe(3);
    expect((err as Error).message).toMatch(/quote/i);
  });
});

describe('the CSV readers use it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-csv-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('file tariff: quoted cells and a UTF-16 file read; an unclosed quote names file:line', () => {
    const f = join(dir, 'q.csv');
    writeFileSync(f, utf16le('valid_from,valid_to,rate\n"2026-01-05T00:00:00Z","2026-01-05T01:00:00Z","0.25"\n'));
    expect(readPriceFile(f, {}, 'UTC').map((s) => s.rate)).toEqual([0.25]);
    writeFileSync(f, 'valid_from,valid_to,rate\n2026-01-05T00:00:00Z,2026-01-05T01:00:00Z,0.2\n"2026-01-05T01:00:00Z,2026-01-05T02:00:00Z,0.3\n');
    expect(() => readPriceFile(f, {}, 'UTC')).toThrow(/^q\.csv:3 .*quote/i);
  });

  it('backtest time,value CSV: a BOM and quoted values read; a bad row names file:line', () => {
    const f = join(dir, 'tv.csv');
    writeFileSync(f, '\uFEFFtime,value\n2025-01-01T00:00Z,"0.25"\n2025-01-01T01:00Z,0.30\n');
    const src = readSeries(f, 'import', { timezone: 'UTC' });
    expect(src.over(Date.parse('2025-01-01T00:00Z'), Date.parse('2025-01-01T02:00Z')).map((i) => i.value)).toEqual([0.25, 0.3]);
    writeFileSync(f, 'time,value\n2025-01-01T00:00Z,0.25\n2025-01-01T01:00Z,"0.3\n');
    expect(() => readSeries(f, 'import', { timezone: 'UTC' })).toThrow(/tv\.csv:3: .*quote/i);
  });
});
