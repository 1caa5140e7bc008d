import { EdgeloopError } from '../../errors.js';

/** A parsed CSV table: the header and every record, as strings, with the line each starts on. */
export interface CsvTable {
  header: string[];
  rows: string[][];
  /** 1-based line number where each row starts (a quoted field may span lines). */
  lines: number[];
}

const dataError = (message: string): EdgeloopError => new EdgeloopError('EDGELOOP_DATA_INVALID', message);

/**
 * Parse CSV text (RFC 4180): fields separated by `delimiter`, records by LF, CRLF or CR; a
 * field in double quotes may hold delimiters, line breaks and doubled quotes (""). A UTF-8 BOM
 * is skipped, unquoted fields are trimmed, blank lines are ignored, and every record must have
 * as many fields as the header. `where` names the source in error messages.
 */
export function parseCsv(text: string, where: string, delimiter = ','): CsvTable {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const records: string[][] = [];
  const starts: number[] = [];
  let record: string[] = [];
  let field = '';
  let inQuotes = false;
  /** The current field was quoted (its closing quote has been seen when !inQuotes). */
  let fieldQuoted = false;
  let recordHasQuotes = false;
  let line = 1;
  let recordLine = 1;

  const endField = (): void => {
    record.push(fieldQuoted ? field : field.trim());
    field = '';
    fieldQuoted = false;
  };
  const endRecord = (): void => {
    endField();
    const blank = record.length === 1 && record[0] === '' && !recordHasQuotes;
    if (!blank) {
      records.push(record);
      starts.push(recordLine);
    }
    record = [];
    recordHasQuotes = false;
  };

  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inQuotes) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        inQuotes = false;
      } else {
        if (c === '\n' || (c === '\r' && text[i + 1] !== '\n')) line++;
        field += c;
      }
    } else if (c === delimiter) {
      endField();
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      recordLine = ++line;
    } else if (c === '"') {
      if (fieldQuoted || field.trim() !== '') throw dataError(`${where} line ${line}: a quote inside an unquoted field (quote the whole field and double inner quotes: "")`);
      field = '';
      inQuotes = fieldQuoted = recordHasQuotes = true;
    } else if (fieldQuoted) {
      if (c.trim() !== '') throw dataError(`${where} line ${line}: text after the closing quote of a field`);
    } else {
      field += c;
    }
  }
  if (inQuotes) throw dataError(`${where} line ${recordLine}: a quoted field is never closed`);
  if (field !== '' || record.length > 0 || fieldQuoted) endRecord();

  if (records.length === 0) throw dataError(`${where}: the file is empty (expected a header row and data rows)`);
  const [header, ...rows] = records;
  const lines = starts.slice(1);
  const seen = new Set<string>();
  header.forEach((name, i) => {
    if (name === '') throw dataError(`${where} line ${starts[0]}: column ${i + 1} has no name in the header`);
    if (seen.has(name)) throw dataError(`${where} line ${starts[0]}: column '${name}' appears twice in the header`);
    seen.add(name);
  });
  rows.forEach((row, r) => {
    if (row.length !== header.length) throw dataError(`${where} line ${lines[r]}: ${row.length} fields, the header has ${header.length}`);
  });
  return { header, rows, lines };
}
