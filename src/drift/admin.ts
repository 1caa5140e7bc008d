import type { AdminRoute } from '../daemon/admin-server.js';
import type { DriftService } from './service.js';

/**
 * Admin API routes for drift (add them to the daemon's adminRoutes): `GET /drift` is the live
 * state `edgeloop drift status` shows beside what SQLite holds (the open window's rows, the
 * windows waiting for the next flush). Everything else the CLI reads from SQLite directly.
 */
export function driftAdminRoutes(service: DriftService): AdminRoute[] {
  return [{ method: 'GET', path: '/drift', handle: () => service.status() }];
}
