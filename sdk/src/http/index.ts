/** `isotrace/http`: inbound HTTP requests in their own request context and SERVER span. */
export { httpRequestContext } from './internal/inbound.js';
export type { HttpHandler, HttpRequestContextOptions, Identity } from './types.js';
export { serverSentEvents } from '../events/internal/server-sent-events.js';
export type { ServerSentEventsOptions, ServerSentEventsRun } from '../events/types.js';
