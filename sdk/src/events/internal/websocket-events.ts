import type { WebSocket } from 'ws';
import type { EventTransport } from './event-sink.js';

/**
 * One message's connection for its progress events: `{ "id": <message id>,
 * "event": {…} }` frames on the socket that sent the message (no `id` when the
 * message had none), sent before the message's reply.
 */
export function webSocketEvents(ws: WebSocket, id: { id?: unknown }): EventTransport {
  // The frame's head is the same for every event of the message: built once.
  const head = id.id === undefined ? '{"event":' : `{"id":${JSON.stringify(id.id)},"event":`;
  return {
    get open() {
      return ws.readyState === ws.OPEN;
    },
    send(json) {
      if (ws.readyState !== ws.OPEN) return false;
      ws.send(`${head}${json}}`);
      return true;
    },
  };
}
