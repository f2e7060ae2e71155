/** `isotrace/ws`: per-message request contexts for `ws` WebSocket servers. */
export { handleWebSocketMessages } from './internal/handle-messages.js';
export type { WebSocketMessageHandler, WebSocketMessageOptions } from './types.js';
