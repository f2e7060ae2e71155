import type { OtlpTracesJson } from '../../audit/internal/otlp-json.js';

/** Jaeger could not be reached or answered something that is not a trace list. */
export class JaegerQueryError extends Error {
  override name = 'JaegerQueryError';
}

export interface TraceQuery {
  service: string;
  sinceMs: number;
  limit: number;
  timeoutMs?: number;
}

/**
 * Finds a service's traces through Jaeger's api/v3 HTTP query API
 * (`GET /api/v3/traces`). Whole traces come back, with the spans of every
 * service in them. Jaeger's own 404 (`No traces found`) means no traces;
 * any other non-2xx answer, or a body that is not an api/v3 trace list,
 * rejects with JaegerQueryError.
 */
export async function fetchTraces(jaegerUrl: string, query: TraceQuery): Promise<OtlpTracesJson> {
  const now = Date.now();
  const params = new URLSearchParams({
    'query.service_name': query.service,
    'query.start_time_min': new Date(now - query.sinceMs).toISOString(),
    'query.start_time_max': new Date(now + 60_000).toISOString(),
    'query.num_traces': String(query.limit),
  });
  const url = new URL(`api/v3/traces?${params.toString()}`, jaegerUrl.endsWith('/') ? jaegerUrl : `${jaegerUrl}/`);
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(query.timeoutMs ?? 15_000) });
  } catch (error) {
    throw new JaegerQueryError(`cannot reach Jaeger at ${jaegerUrl}: ${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message}`);
  }
  let body: string;
  try {
    body = await response.text();
  } catch (error) {
    throw new JaegerQueryError(`lost the connection to Jaeger at ${jaegerUrl} while reading its answer: ${(error as Error).message}`);
  }
  // Any other server answers 404 for this path too; only Jaeger's own 404 means "no traces".
  if (response.status === 404 && isJaegerNoTraces(body)) return { result: { resourceSpans: [] } };
  if (!response.ok) {
    const hint = response.status === 404 ? ` (is ${jaegerUrl} Jaeger's query port?)` : '';
    throw new JaegerQueryError(`Jaeger answered ${response.status} for ${url.pathname}${hint}: ${body.slice(0, 300)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new JaegerQueryError(`Jaeger's answer is not JSON (is ${jaegerUrl} Jaeger's query port?): ${body.slice(0, 200)}`);
  }
  if (!isTraceList(parsed)) throw new JaegerQueryError(`Jaeger's answer is not an api/v3 trace list (is ${jaegerUrl} Jaeger's query port?): ${body.slice(0, 200)}`);
  return parsed;
}

/** Jaeger's api/v3 "nothing matched": `{"error":{"httpCode":404,"message":"No traces found"}}`. */
function isJaegerNoTraces(body: string): boolean {
  try {
    const parsed = JSON.parse(body) as { error?: { httpCode?: unknown } } | null;
    return parsed?.error?.httpCode === 404;
  } catch {
    return false;
  }
}

/** `{ result: { resourceSpans?: [...] } }`, the envelope of every api/v3 trace answer. */
function isTraceList(parsed: unknown): parsed is OtlpTracesJson {
  if (typeof parsed !== 'object' || parsed === null || !('result' in parsed)) return false;
  const { result } = parsed;
  if (typeof result !== 'object' || result === null) return false;
  return !('resourceSpans' in result) || Array.isArray(result.resourceSpans);
}
