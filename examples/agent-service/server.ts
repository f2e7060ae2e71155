/**
 * The agent service: HTTP (`POST /chat` with `{ "message": "…" }`) and
 * WebSocket (`/ws`, messages `{ "id": 1, "message": "…" }`). Every HTTP
 * request and every WebSocket message runs in its own isotrace request
 * context and runs an agent turn on the Vercel AI SDK (agent.ts) with tools
 * wrapped by isotraceTools(): each request's calls get a tool system of its
 * own: `inventory_lookup` (calls the inventory service over HTTP),
 * `summarize` (a worker thread) and `remember` (SharedState).
 *
 * This module never starts tracing: main.ts does, or the process that embeds
 * it (tests, the demo), which also decides `propagateTo` — whether the
 * inventory host receives baggage.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { ToolSet } from 'ai';
import { isotraceTools } from 'isotrace/ai-sdk';
import type { Identity } from 'isotrace/http';
import { httpRequestContext } from 'isotrace/http';
import { createToolSystem, defineTool, type ToolSystem } from 'isotrace/tools';
import { createWorkerPool } from 'isotrace/workers';
import { handleWebSocketMessages } from 'isotrace/ws';
import { WebSocketServer } from 'ws';
import { closeServer, listen, readJsonBody, sendJson } from '../shared/http.ts';
import { defaultServiceSecret } from '../shared/service-token.ts';
import { runAgentTurn, type AgentReply } from './agent.ts';
import { agentTools, type AgentTools } from './tools.ts';

/** Options of createAgentService(). */
export interface AgentServiceOptions {
  /** Base URL of the inventory service, e.g. http://127.0.0.1:8081. */
  inventoryUrl: string;
  /** Default 0: a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Threads of the summarize pool; default 2. */
  workerThreads?: number;
  /** The service-token secret shared with the inventory service; default SERVICE_TOKEN_SECRET or a demo value. */
  serviceSecret?: string;
  /** How long `inventory_lookup` waits for the inventory service; default 10,000 ms. */
  inventoryTimeoutMs?: number;
  /**
   * Plants a known isolation bug so the audits can be seen catching it (the
   * demo's --plant-leak). 'global-registry': instead of isotraceTools(), the
   * tools dispatch through one tool system, made by the first request and
   * reused by every later one. Never in production.
   */
  plantLeak?: 'global-registry';
}

/** A running agent service. */
export interface AgentService {
  /** e.g. http://127.0.0.1:8080 */
  readonly url: string;
  /** e.g. ws://127.0.0.1:8080/ws */
  readonly wsUrl: string;
  close(): Promise<void>;
}

const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_MESSAGE_CHARS = 4_000;

/** Starts the agent service (in this process; call startTracing() first). */
export async function createAgentService(options: AgentServiceOptions): Promise<AgentService> {
  if (typeof options?.inventoryUrl !== 'string' || !URL.canParse(options.inventoryUrl)) {
    throw new TypeError("createAgentService: option 'inventoryUrl' must be a URL such as http://127.0.0.1:8081.");
  }
  const threads = options.workerThreads ?? 2;
  // A fixed pool: a thread that piscina retires when idle costs a second of start-up (it loads OpenTelemetry) when replaced.
  const summarizePool = createWorkerPool({ filename: new URL('./summarize-worker.ts', import.meta.url), minThreads: threads, maxThreads: threads });
  const plainTools = agentTools({
    inventoryUrl: options.inventoryUrl,
    inventoryTimeoutMs: options.inventoryTimeoutMs ?? 10_000,
    serviceSecret: options.serviceSecret ?? defaultServiceSecret(),
    summarizePool,
  });

  // Made once per service and free of request state: isotraceTools() makes each request's tool system at its first call.
  const tools = options.plantLeak === 'global-registry' ? globalRegistry(plainTools) : isotraceTools(plainTools);

  const chat = httpRequestContext({ identify: identifyFromHeaders, name: 'POST /chat' }, async (req, res) => {
    let message: string;
    try {
      message = messageText(await readJsonBody(req));
    } catch (error) {
      return sendJson(res, 400, { error: (error as Error).message });
    }
    sendJson(res, 200, await runAgentTurn(message, tools));
  });

  const server = createServer((req, res) => {
    const path = req.url?.split('?')[0];
    if (path === '/health') return sendJson(res, 200, { status: 'ok' });
    if (path === '/chat' && req.method === 'POST') return chat(req, res);
    sendJson(res, 404, { error: `no route for ${req.method} ${path}` });
  });

  const wss = new WebSocketServer({ server, path: '/ws', maxPayload: 64 * 1024 });
  wss.on('connection', (ws, request) => {
    if (!identifyFromUpgrade(request)) {
      ws.close(1008, 'unauthenticated: send x-tenant-id and x-user-id headers, or ?tenant=…&user=…');
      return;
    }
    // Each message: its own request context, trace and tool system (linked to the connection's span).
    // Only our own input errors are meant for the client; anything else is answered 'internal error'.
    const exposeError = (error: unknown) => (error instanceof BadMessageError ? error.message : undefined);
    handleWebSocketMessages(ws, { request, identify: (upgrade) => identifyFromUpgrade(upgrade), exposeError }, (message) => answerSocketMessage(message, tools));
  });

  const url = await listen(server, options.port ?? 0, options.host ?? '127.0.0.1');
  return {
    url,
    wsUrl: `${url.replace(/^http/, 'ws')}/ws`,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await closeServer(server);
      await summarizePool.close();
    },
  };
}

/**
 * Stand-in for real authentication: trusts `x-tenant-id` / `x-user-id`
 * headers. A real service verifies a session or a signed token here.
 */
function identifyFromHeaders(req: IncomingMessage): Identity | undefined {
  return identity(req.headers['x-tenant-id'], req.headers['x-user-id']);
}

/** The same stand-in for WebSocket upgrades, which browsers cannot add headers to: headers, else `?tenant=…&user=…`. */
function identifyFromUpgrade(req: IncomingMessage | undefined): Identity | undefined {
  if (!req) return undefined;
  const query = new URL(req.url ?? '/', 'http://agent').searchParams;
  return identifyFromHeaders(req) ?? identity(query.get('tenant') ?? undefined, query.get('user') ?? undefined);
}

function identity(tenantId: unknown, userId: unknown): Identity | undefined {
  if (typeof tenantId !== 'string' || typeof userId !== 'string') return undefined;
  return ID_PATTERN.test(tenantId) && ID_PATTERN.test(userId) ? { tenantId, userId } : undefined;
}

async function answerSocketMessage(message: unknown, tools: AgentTools): Promise<{ id: unknown } & AgentReply> {
  const { id } = (message ?? {}) as { id?: unknown };
  return { id, ...(await runAgentTurn(messageText(message), tools)) };
}

/**
 * THE PLANTED BUG (--plant-leak global-registry): hand-written glue instead of
 * isotraceTools(). Every AI SDK call goes through one isotrace tool system,
 * made by the first request's first tool call and kept for everyone; the
 * dispatcher's context-owner audit flags every call another request makes.
 */
function globalRegistry<TOOLS extends ToolSet>(tools: TOOLS): TOOLS {
  type Execute = NonNullable<ToolSet[string]['execute']>;
  const definitions = Object.entries(tools).map(([name, tool]) =>
    defineTool({
      name,
      description: typeof tool.description === 'string' ? tool.description : undefined,
      execute: (input, call) => (tool.execute as Execute)(input, { toolCallId: call.callId, messages: [], abortSignal: call.signal, context: undefined }),
    }),
  );
  let shared: ToolSystem | undefined;
  const glued = Object.entries(tools).map(([name, tool]) => {
    const execute: Execute = (input, { toolCallId, abortSignal }) => (shared ??= createToolSystem(definitions)).dispatcher.execute(name, input, { callId: toolCallId, signal: abortSignal });
    return [name, { ...tool, execute }];
  });
  return Object.fromEntries(glued) as TOOLS;
}

/** A chat payload the client got wrong: its message is meant for the client. */
class BadMessageError extends Error {
  override name = 'BadMessageError';
}

/** The `message` string of a chat payload; throws BadMessageError otherwise. */
function messageText(payload: unknown): string {
  const message = (payload as { message?: unknown } | null)?.message;
  if (typeof message !== 'string' || message.trim() === '') throw new BadMessageError('expected JSON like {"message": "how many lamps do we have?"}');
  if (message.length > MAX_MESSAGE_CHARS) throw new BadMessageError(`message longer than ${MAX_MESSAGE_CHARS} characters`);
  return message;
}
