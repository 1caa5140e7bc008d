/** The formats a trained model is exported to (a module of its own: the daemon reads the names without loading the exporters). */
export const VARIANTS = ['tfjs', 'tfjs-float16', 'tfjs-uint8', 'onnx-fp32', 'onnx-int8', 'onnx-int8-static'] as const;
export type Variant = (typeof VARIANTS)[number];
