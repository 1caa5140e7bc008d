export { OIP_TO_DTYPE, DTYPE_TO_OIP, toHalf, fromHalf, type OipDatatype } from './datatypes.js';
export { decodeJsonTensor, encodeJsonTensor, fromValues, toValues, type JsonTensor, type Tensor } from './json-codec.js';
export { OIP_FRAME_MAGIC, HEADER_LENGTH_FIELD, frame, unframe, isFramed, tensorBytes, tensorFromBytes } from './binary.js';
export { parseInferRequest, encodeInferResponse, type InferRequest, type OutputTensor } from './request.js';
export { runTensors, type RunLimits, type TensorResult } from './runner.js';
export { isOipPayload, TensorRequests, type TensorRequestsOptions } from './mqtt-requests.js';
export { modelMetadata, serverMetadata } from './metadata.js';
