/** Regression metrics on one set of rows. */
export interface RegressionMetrics {
  rows: number;
  mse: number;
  rmse: number;
  mae: number;
  /**
   * Coefficient of determination, 1 - SS_res / SS_tot. When the true values are constant
   * (SS_tot = 0) it is 1 for perfect predictions and 0 otherwise, as scikit-learn reports it.
   */
  r2: number;
}

export function regressionMetrics(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): RegressionMetrics {
  const n = yTrue.length;
  if (n !== yPred.length) throw new Error(`regressionMetrics: ${n} true values but ${yPred.length} predictions`);
  if (n === 0) throw new Error('regressionMetrics: no rows');
  let mean = 0;
  for (let i = 0; i < n; i++) mean += yTrue[i];
  mean /= n;
  let ssRes = 0;
  let ssTot = 0;
  let abs = 0;
  for (let i = 0; i < n; i++) {
    const e = yTrue[i] - yPred[i];
    ssRes += e * e;
    abs += Math.abs(e);
    ssTot += (yTrue[i] - mean) ** 2;
  }
  const mse = ssRes / n;
  const r2 = ssTot > 0 ? 1 - ssRes / ssTot : ssRes === 0 ? 1 : 0;
  return { rows: n, mse, rmse: Math.sqrt(mse), mae: abs / n, r2 };
}
