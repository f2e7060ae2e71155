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
 * service in them. A 404 means no traces.
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
  const body = await response.text();
  if (response.status === 404) return { result: { resourceSpans: [] } };
  if (!response.ok) throw new JaegerQueryError(`Jaeger answered ${response.status} for ${url.pathname}: ${body.slice(0, 300)}`);
  try {
    return JSON.parse(body) as OtlpTracesJson;
  } catch {
    throw new JaegerQueryError(`Jaeger's answer is not JSON (is ${jaegerUrl} Jaeger's query port?): ${body.slice(0, 200)}`);
  }
}
