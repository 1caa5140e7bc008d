/**
 * Labelled feedback and live accuracy.
 *
 *   const feedback = FeedbackService.open(home, { options: config.feedback, limits: config.serving,
 *     models: (name) => host.get(name), topics, publish, log, onEvent });
 *   new RequestHandler({ ..., predictions: feedback.recorder })   // predictionId on every reply + ring
 *   new MqttTransport({ ..., onFeedback: (req) => feedback.handle(req) })  // edgeloop/{id}/feedback/+
 *   feedback.start();  ...  await feedback.flush();  await feedback.close();
 *
 * FeedbackService: handle(req) (MQTT intake, acked like inference), addRows(model, x, rows,
 * labels, source) (imports), flush(), onLabelled(listener) (after each flush), liveAccuracy(model),
 * openAlerts(), alertFor(model), status(served), store (a FeedbackStore: LabelledRows for gates
 * and fine-tuning: rows(), count(), reservoir(), latestId(); rowsPaged() reads big sets a page at a time). feedbackAdminRoutes(service) for the daemon.
 */
export type { FeedbackSource, NewLabelledRow, LabelledBatch, LabelledRows, LabelledListener, RowsQuery } from './types.js';
export { rowsPaged, concatBatches, PAGE_ROWS } from './paged.js';
export { FeedbackService, type FeedbackOptions, type FeedbackServiceOptions, type FeedbackStatus, type FeedbackModelStatus } from './service.js';
export { FeedbackStore, isHoldout, type StoreLimits, type StoredAccuracyAlert, type ModelCounts, type WindowAggregate } from './store.js';
export { liveAccuracy, judgeAlert, testAccuracyOf, type LiveAccuracy, type AccuracyWindow, type AccuracyEvent, type AccuracyAlertOptions } from './accuracy.js';
export { parseFeedback, parseLabel, unsupportedReason, classCount, type ParsedFeedback, type FeedbackEnvelope } from './intake.js';
export { PredictionRecorder } from './recorder.js';
export { PredictionIds, PredictionRing, type RingEntry } from './ring.js';
export { feedbackAdminRoutes } from './admin.js';
