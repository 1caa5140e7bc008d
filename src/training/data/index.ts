export { parseCsv, type CsvTable } from './csv.js';
export { readCsvDataset, datasetFromCsv, selectRows, type Dataset, type DatasetOptions, type Task } from './dataset.js';
export { prng, shuffle, splitRows, kFolds, parseFractions, checkFractions, DEFAULT_SPLIT, type Split, type SplitFractions } from './split.js';
export { fitStandardizer, standardize, targetScale, type Standardizer } from './standardize.js';
export { provenanceOf, reproduceSplit, splitDataset, type DataProvenance } from './provenance.js';
