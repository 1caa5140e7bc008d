import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';

type KernelFunc = tf.KernelConfig['kernelFunc'];
interface CpuBackend {
  data: { get(id: tf.DataId): { values: Float32Array } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}
interface Attrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

let stock: KernelFunc | undefined;
let wanted = true;

/** Whether training on cpu uses the fast kernel (default true; benchmarks turn it off to compare). */
export function useFastCpuConvGradient(on: boolean): void {
  wanted = on;
  if (on) installFastCpuConvGradient();
  else uninstallFastCpuConvGradient();
}

/**
 * The filter gradient of a 2-D convolution (NHWC) with flat-array loops. tfjs-backend-cpu
 * computes it through `TensorBuffer.get(b, r, c, d)` for every multiply, which makes it ~50x
 * slower than the forward pass and dominates CNN training on the cpu backend. Same sums,
 * accumulated in float64 like the stock kernel; NCHW falls back to the stock kernel.
 */
const conv2DBackpropFilter: KernelFunc = (args) => {
  const { inputs, attrs } = args;
  const backend = args.backend as unknown as CpuBackend;
  const a = attrs as unknown as Attrs;
  if (a.dataFormat !== 'NHWC') return stock!(args);
  const x = inputs.x as tf.TensorInfo;
  const dy = inputs.dy as tf.TensorInfo;
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], a.filterShape, a.strides, 1, a.pad, a.dimRoundingMode, false, 'channelsLast');
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const xv = backend.data.get(x.dataId).values;
  const dyv = backend.data.get(dy.dataId).values;
  const acc = new Float64Array(filterHeight * filterWidth * inChannels * outChannels);
  for (let b = 0; b < batchSize; b++) {
    for (let yR = 0; yR < outHeight; yR++) {
      for (let yC = 0; yC < outWidth; yC++) {
        const dyOff = ((b * outHeight + yR) * outWidth + yC) * outChannels;
        for (let wR = 0; wR < filterHeight; wR++) {
          const xR = yR * strideHeight + wR - top;
          if (xR < 0 || xR >= inHeight) continue;
          for (let wC = 0; wC < filterWidth; wC++) {
            const xC = yC * strideWidth + wC - left;
            if (xC < 0 || xC >= inWidth) continue;
            const xOff = ((b * inHeight + xR) * inWidth + xC) * inChannels;
            const wOff = (wR * filterWidth + wC) * inChannels * outChannels;
            for (let d1 = 0; d1 < inChannels; d1++) {
              const xval = xv[xOff + d1];
              if (xval === 0) continue;
              const row = wOff + d1 * outChannels;
              for (let d2 = 0; d2 < outChannels; d2++) acc[row + d2] += xval * dyv[dyOff + d2];
            }
          }
        }
      }
    }
  }
  return backend.makeTensorInfo([filterHeight, filterWidth, inChannels, outChannels], 'float32', Float32Array.from(acc));
};

/**
 * Replace tfjs-backend-cpu's Conv2DBackpropFilter with {@link conv2DBackpropFilter}
 * (idempotent). Only gradients use this kernel, so inference on cpu is unaffected.
 */
export function installFastCpuConvGradient(): void {
  if (stock || !wanted) return;
  const current = tf.getKernel('Conv2DBackpropFilter', 'cpu');
  if (!current) return;
  stock = current.kernelFunc;
  tf.unregisterKernel('Conv2DBackpropFilter', 'cpu');
  tf.registerKernel({ kernelName: 'Conv2DBackpropFilter', backendName: 'cpu', kernelFunc: conv2DBackpropFilter });
}

/** Put the stock kernel back (benchmarks compare both). */
export function uninstallFastCpuConvGradient(): void {
  if (!stock) return;
  tf.unregisterKernel('Conv2DBackpropFilter', 'cpu');
  tf.registerKernel({ kernelName: 'Conv2DBackpropFilter', backendName: 'cpu', kernelFunc: stock });
  stock = undefined;
}
