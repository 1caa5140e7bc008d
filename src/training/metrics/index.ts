export { classificationMetrics, type ClassificationMetrics, type ClassMetrics, type AverageMetrics } from './classification.js';
export { regressionMetrics, type RegressionMetrics } from './regression.js';
export { formatClassificationReport, formatConfusionMatrix, formatRegressionReport } from './report.js';
