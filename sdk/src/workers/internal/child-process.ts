import { context, defaultTextMapGetter, defaultTextMapSetter, ROOT_CONTEXT, type Context, type TextMapPropagator } from '@opentelemetry/api';
import type * as CoreModule from '@opentelemetry/core';
import { requestContextOf } from '../../context/internal/request-scope.js';
import { loadModule } from '../../tracing/internal/load-module.js';
import { getRuntime } from '../../tracing/internal/runtime.js';
import type { SharedStateStore } from '../../shared-state/types.js';
import { assertSnapshot, withRequest } from './carrier.js';

/** The environment variables that carry a context into a child process (OpenTelemetry's env carriers + ours). */
const ENV = { traceparent: 'TRACEPARENT', tracestate: 'TRACESTATE', baggage: 'BAGGAGE', request: 'ISOTRACE_REQUEST_CONTEXT' } as const;

/**
 * Both W3C propagators, unfiltered (an in-process hop of our own). Built when
 * used: `isotrace/workers` is imported by every worker file, whose thread
 * need not load @opentelemetry/core for it.
 */
function envPropagator(): TextMapPropagator {
  const { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } = loadModule<typeof CoreModule>('@opentelemetry/core');
  return new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] });
}

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
  const active = context.active();
  const headers: Record<string, string> = {};
  envPropagator().inject(active, headers, defaultTextMapSetter);
  const out: NodeJS.ProcessEnv = { ...env };
  for (const name of Object.values(ENV)) delete out[name];
  if (headers.traceparent) out[ENV.traceparent] = headers.traceparent;
  if (headers.tracestate) out[ENV.tracestate] = headers.tracestate;
  if (headers.baggage) out[ENV.baggage] = headers.baggage;
  const request = requestContextOf(active);
  if (request) out[ENV.request] = JSON.stringify(request.toSnapshot());
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

function contextFromEnv(env: NodeJS.ProcessEnv, store: SharedStateStore): Context {
  const headers = { traceparent: env[ENV.traceparent], tracestate: env[ENV.tracestate], baggage: env[ENV.baggage] };
  const ctx = envPropagator().extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
  const json = env[ENV.request];
  if (json) {
    let snapshot: unknown;
    try {
      snapshot = JSON.parse(json);
    } catch (error) {
      throw new TypeError(`${ENV.request} is not valid JSON: ${(error as Error).message}`, { cause: error });
    }
    assertSnapshot(snapshot, ENV.request);
    return withRequest(ctx, snapshot, store);
  }
  return ctx;
}
