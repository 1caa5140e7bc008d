export { terminalChart, type Series, type ChartOptions } from './terminal-chart.js';
export { learningCurvesSvg } from './svg-chart.js';
export { EpochProgress } from './progress.js';
