export { startHttp, type HttpContext, type HttpService } from './service.js';
export { readiness, type DaemonPhase, type Readiness } from './health.js';
export { httpStatus } from './respond.js';
export type { HttpConfig, Route, RouteCall } from './server.js';
