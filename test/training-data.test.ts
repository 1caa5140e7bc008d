import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { datasetFromCsv, fitStandardizer, kFolds, parseCsv, readCsvDataset, splitRows } from '../src/training/data/index.js';

describe('parseCsv', () => {
  it('handles quotes, doubled quotes, delimiters and line breaks inside quotes, CRLF and a BOM', () => {
    const text = '\ufeffname,note,value\r\n"Smith, J.","said ""hi""",1\r\n"multi\r\nline",plain,2\r\n';
    const t = parseCsv(text, 'x.csv');
    expect(t.header).toEqual(['name', 'note', 'value']);
    expect(t.rows).toEqual([
      ['Smith, J.', 'said "hi"', '1'],
      ['multi\r\nline', 'plain', '2'],
    ]);
    expect(t.lines).toEqual([2, 3]);
  });

  it('skips blank lines, keeps empty fields, accepts LF, CR and no final newline, trims unquoted fields', () => {
    const t = parseCsv('a,b\n\n1, 2 \r3,\n\n,"" ', 'x.csv');
    expect(t.rows).toEqual([
      ['1', '2'],
      ['3', ''],
      ['', ''],
    ]);
  });

  it('names the line of a row with the wrong number of fields, counting lines inside quoted fields', () => {
    expect(() => parseCsv('a,b\n"x\ny",1\n1,2,3\n', 'bad.csv')).toThrow(/^bad\.csv line 4: 3 fields, the header has 2$/);
  });

  it('rejects an unterminated quote, a stray quote, an empty or duplicated header name, and an empty file', () => {
    expect(() => parseCsv('a,b\n1,"open\n', 'q.csv')).toThrow(/q\.csv line 2: a quoted field is never closed/);
    expect(() => parseCsv('a,b\n1,x"y\n', 'q.csv')).toThrow(/line 2: a quote inside an unquoted field/);
    expect(() => parseCsv('a,,c\n1,2,3\n', 'h.csv')).toThrow(/column 2 has no name/);
    expect(() => parseCsv('a,a\n1,2\n', 'h.csv')).toThrow(/column 'a' appears twice/);
    expect(() => parseCsv('\n\n', 'e.csv')).toThrow(/e\.csv: the file is empty/);
  });
});

describe('datasetFromCsv', () => {
  const csv = ['f1,f2,label', '1,2,b', 'NA,3,a', '4,,a', '5,6,?', '7,8,10', '9,1,2', '2,2,a'].join('\n');

  it('drops rows with missing values, counts them per column, and orders classes', () => {
    const ds = datasetFromCsv(csv, 'd.csv', { label: 'label', task: 'classification' });
    expect(ds.rows).toBe(4);
    expect(ds.totalRows).toBe(7);
    expect(ds.dropped).toEqual({ rows: 3, byColumn: { f1: 1, f2: 1, label: 1 } });
    expect(ds.features).toEqual(['f1', 'f2']);
    expect(Array.from(ds.x)).toEqual([1, 2, 7, 8, 9, 1, 2, 2]);
    // Not all numeric: code-point order.
    expect(ds.classes).toEqual(['10', '2', 'a', 'b']);
    expect(Array.from(ds.y)).toEqual([3, 0, 1, 2]);
  });

  it('orders numeric classes numerically, after known classes', () => {
    const ds = datasetFromCsv('x,y\n1,10\n2,9\n3,2\n4,7\n', 'n.csv', { label: 'y', task: 'classification', classes: ['7'] });
    expect(ds.classes).toEqual(['7', '2', '9', '10']);
  });

  it('fails on a label column that does not exist, listing the columns', () => {
    expect(() => datasetFromCsv(csv, 'd.csv', { label: 'target', task: 'classification' })).toThrow(/d\.csv: label column 'target' not found; the columns are 'f1', 'f2', 'label'/);
  });

  it('fails on a non-numeric feature, naming line and column', () => {
    expect(() => datasetFromCsv('a,b,label\n1,2,x\n3,red,y\n', 'c.csv', { label: 'label', task: 'classification' })).toThrow(/c\.csv line 3: feature 'b' is not numeric \('red'\)/);
  });

  it('fails on a header without rows, and on a non-numeric regression target', () => {
    expect(() => datasetFromCsv('a,label\n', 'h.csv', { label: 'label', task: 'classification' })).toThrow(/h\.csv: no data rows/);
    expect(() => datasetFromCsv('a,t\n1,2\n2,abc\n', 'r.csv', { label: 't', task: 'regression' })).toThrow(/r\.csv line 3: label 't' is not numeric/);
    expect(() => datasetFromCsv('a,label\n1,x\n2,x\n', 's.csv', { label: 'label', task: 'classification' })).toThrow(/single class/);
  });

  it('reports a missing file by name with the data error code', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-data-'));
    await expect(readCsvDataset(path.join(dir, 'nope.csv'), { label: 'label', task: 'classification' })).rejects.toMatchObject({ code: 'EDGELOOP_DATA_INVALID', message: expect.stringMatching(/nope\.csv: no such file$/) });
    const empty = path.join(dir, 'empty.csv');
    writeFileSync(empty, '');
    await expect(readCsvDataset(empty, { label: 'label', task: 'classification' })).rejects.toThrow(/empty\.csv: the file is empty/);
  });
});

describe('splitting', () => {
  // 3 classes of 50, 30 and 7 rows
  const strata = [...Array(50).fill(0), ...Array(30).fill(1), ...Array(7).fill(2)];

  it('stratifies train/validation/test by class, covers every row once, and is reproducible', () => {
    const s = splitRows(strata.length, { train: 0.6, validation: 0.2, test: 0.2 }, 9, strata);
    const all = [...s.train, ...s.validation, ...s.test].sort((a, b) => a - b);
    expect(all).toEqual(strata.map((_, i) => i));
    const count = (idx: number[], c: number) => idx.filter((i) => strata[i] === c).length;
    expect([count(s.train, 0), count(s.validation, 0), count(s.test, 0)]).toEqual([30, 10, 10]);
    expect([count(s.train, 1), count(s.validation, 1), count(s.test, 1)]).toEqual([18, 6, 6]);
    // 7 rows: 4.2 / 1.4 / 1.4 -> 4 / 2 / 1 by largest remainder (ties to the earlier part)
    expect([count(s.train, 2), count(s.validation, 2), count(s.test, 2)]).toEqual([4, 2, 1]);
    expect(splitRows(strata.length, { train: 0.6, validation: 0.2, test: 0.2 }, 9, strata)).toEqual(s);
    expect(splitRows(strata.length, { train: 0.6, validation: 0.2, test: 0.2 }, 10, strata).test).not.toEqual(s.test);
  });

  it('deals stratified k folds that partition the rows with balanced classes', () => {
    const rows = strata.map((_, i) => i);
    const folds = kFolds(rows, 5, 3, strata);
    expect(folds.flat().sort((a, b) => a - b)).toEqual(rows);
    for (const c of [0, 1, 2]) {
      const per = folds.map((f) => f.filter((i) => strata[i] === c).length);
      expect(Math.max(...per) - Math.min(...per)).toBeLessThanOrEqual(1);
    }
    expect(() => kFolds(rows, 1, 3)).toThrow(/--folds must be an integer >= 2/);
  });

  it('standardises with train statistics, a constant feature getting std 1', () => {
    const s = fitStandardizer(Float32Array.from([1, 5, 3, 5, 5, 5]), 2, [0, 1, 2]);
    expect(s.mean).toEqual([3, 5]);
    expect(s.std[0]).toBeCloseTo(Math.sqrt(8 / 3), 12);
    expect(s.std[1]).toBe(1);
  });
});
