import { context, type Context } from '@opentelemetry/api';
import { getRuntime } from '../../tracing/internal/runtime.js';
import { assertSnapshot, captureCarrier, restoreContext, type ContextCarrier } from './carrier.js';

/** The environment variables that carry a context into a child process (OpenTelemetry's env carriers + ours). */
const ENV = { traceparent: 'TRACEPARENT', tracestate: 'TRACESTATE', baggage: 'BAGGAGE', request: 'ISOTRACE_REQUEST_CONTEXT' } as const;

/**
 * An environment for a child process that carries the active context:
 * `TRACEPARENT`, `TRACESTATE` and `BAGGAGE` (OpenTelemetry's environment
 * carriers) plus `ISOTRACE_REQUEST_CONTEXT`, a JSON snapshot of the request
 * context. Starts from `env` (default `process.env`); stale carriers are removed.
 *
 * ```ts
 * spawn(process.execPath, ['report.js'], { env: contextToEnv() });
 * ```
 */
export function contextToEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const carrier = captureCarrier(context.active());
  const out: NodeJS.ProcessEnv = { ...env };
  for (const name of Object.values(ENV)) delete out[name];
  if (carrier.traceparent) out[ENV.traceparent] = carrier.traceparent;
  if (carrier.tracestate) out[ENV.tracestate] = carrier.tracestate;
  if (carrier.baggage) out[ENV.baggage] = carrier.baggage;
  if (carrier.request) out[ENV.request] = JSON.stringify(carrier.request);
  return out;
}

/**
 * In a child process started with contextToEnv(): runs `fn` in the parent's
 * context, so its spans join the parent's trace and getRequestContext()
 * returns (a copy of) the parent's request. SharedState is this process's
 * store: use RedisStore to share it. Needs startTracing() in the child.
 *
 * Rejects with TypeError when ISOTRACE_REQUEST_CONTEXT is malformed, and
 * TracingNotStartedError before startTracing().
 */
export async function withContextFromEnv<T>(fn: () => T | Promise<T>, env: NodeJS.ProcessEnv = process.env): Promise<T> {
  const runtime = getRuntime('withContextFromEnv()');
  return context.with(contextFromEnv(env, runtime.store), fn);
}

function contextFromEnv(env: NodeJS.ProcessEnv, store: Parameters<typeof restoreContext>[1]): Context {
  const carrier: ContextCarrier = {};
  if (env[ENV.traceparent]) carrier.traceparent = env[ENV.traceparent];
  if (env[ENV.tracestate]) carrier.tracestate = env[ENV.tracestate];
  if (env[ENV.baggage]) carrier.baggage = env[ENV.baggage];
  const json = env[ENV.request];
  if (json) {
    let snapshot: unknown;
    try {
      snapshot = JSON.parse(json);
    } catch (error) {
      throw new TypeError(`${ENV.request} is not valid JSON: ${(error as Error).message}`, { cause: error });
    }
    assertSnapshot(snapshot, ENV.request);
    carrier.request = snapshot;
  }
  return restoreContext(carrier, store);
}
