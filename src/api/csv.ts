import { CsvError, parse } from 'csv-parse/sync';

/** One record of a CSV file and the line it is on (1-based; a quoted cell spanning lines: its last). */
export interface CsvRow {
  cells: string[];
  line: number;
}

/** A CSV file that cannot be parsed (an unclosed quote, say), at a line. */
export class CsvSyntaxError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
    this.name = 'CsvSyntaxError';
  }
}

/**
 * The text of a file as read from disk: UTF-16 (LE or BE) when its byte-order mark says so, else
 * UTF-8; the mark itself is dropped.
 */
export function decodeText(bytes: Buffer): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return bytes.subarray(2).toString('utf16le');
  if (bytes[0] === 0xfe && bytes[1] === 0xff) {
    const swapped = Buffer.from(bytes.subarray(2));
    swapped.swap16();
    return swapped.toString('utf16le');
  }
  return bytes.toString('utf8').replace(/^\uFEFF/, '');
}

/** The separator of a CSV text, from its first line that is not blank or a comment: `;`, else a tab, else `,`. */
export function guessDelimiter(text: string): string {
  const first = text.split(/\r?\n/).find((l) => l.trim() !== '' && !l.startsWith('#')) ?? '';
  return first.includes(';') ? ';' : first.includes('\t') ? '\t' : ',';
}

/**
 * The records of a CSV text (or file bytes, see `decodeText`), parsed by csv-parse: quoted cells
 * (`"a, b"`, `"say ""hi"""`) honoured, a byte-order mark dropped, blank lines skipped, cells
 * trimmed, rows of any length; lines starting with `#` are comments when `comments` is set. The
 * delimiter is the one given, else guessed (`guessDelimiter`).
 */
export function parseCsv(input: string | Buffer, options: { delimiter?: string; comments?: boolean } = {}): { rows: CsvRow[]; delimiter: string } {
  const text = typeof input === 'string' ? input.replace(/^\uFEFF/, '') : decodeText(input);
  const delimiter = options.delimiter ?? guessDelimiter(text);
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parse(text, {
      delimiter,
      info: true,
      bom: true,
      skip_empty_lines: true,
      relax_column_count: true,
      trim: true,
      ...(options.comments ? { comment: '#', comment_no_infix: true } : {}),
    }) as unknown as typeof records;
  } catch (err) {
    if (err instanceof CsvError) {
      const line = (err as CsvError & { lines?: number }).lines ?? 1;
      throw new CsvSyntaxError(line, err.message.replace(/,? at line \d+\.?$/, ''));
    }
    throw err;
  }
  return { rows: records.map((r) => ({ cells: r.record, line: r.info.lines })), delimiter };
}
