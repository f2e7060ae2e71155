/**
 * What integration tests need around the example services: the chat clients
 * (shared with the demo, in examples/shared/chat-client.ts) and a W3C baggage
 * header parser.
 */
export { chatOverHttp, openChatSocket, type AgentReply, type ChatIdentity, type ChatSocket, type SocketReply } from '../../examples/shared/chat-client.ts';

/** The entries of a W3C `baggage` header (properties dropped, percent-decoding applied). */
export function parseBaggage(header: string | undefined): Record<string, string> {
  const entries: Record<string, string> = {};
  if (header === undefined) return entries;
  for (const member of header.split(',')) {
    const [pair = ''] = member.split(';');
    const separator = pair.indexOf('=');
    if (separator <= 0) continue;
    entries[decodeURIComponent(pair.slice(0, separator).trim())] = decodeURIComponent(pair.slice(separator + 1).trim());
  }
  return entries;
}
