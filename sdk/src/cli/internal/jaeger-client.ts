import type { OtlpTracesJson } from '../../audit/internal/otlp-json.js';

/** Jaeger could not be reached, or answered with an HTTP error: the audit did not run (exit 2). */
export class JaegerUnreachableError extends Error {
  override name = 'JaegerUnreachableError';
}

/** Jaeger answered, but not with an api/v3 trace list: nothing it said can be audited (exit 3). */
export class JaegerAnswerError extends Error {
  override name = 'JaegerAnswerError';
}

/** The answer grew past the byte bound; the caller asks again for fewer traces. */
export class AnswerTooLargeError extends Error {
  override name = 'AnswerTooLargeError';
}

/** One `GET /api/v3/traces` search. Times are RFC 3339; Jaeger includes both ends. */
export interface PageQuery {
  service: string;
  startMin: string;
  startMax: string;
  numTraces: number;
  /** Bytes of answer read at most; beyond it the read stops and AnswerTooLargeError rejects. */
  maxAnswerBytes: number;
  timeoutMs: number;
}

/**
 * Searches a service's traces through Jaeger's api/v3 HTTP query API. Whole
 * traces come back, with the spans of every service in them. Resolves to the
 * OTLP/JSON answer, or to an empty list for Jaeger's own 404 (`No traces
 * found`, also its answer for a service it has never seen). The answer is
 * read as a stream and never buffered past `maxAnswerBytes`.
 */
export async function fetchTracePage(jaegerUrl: string, query: PageQuery): Promise<OtlpTracesJson> {
  const params = new URLSearchParams({
    'query.service_name': query.service,
    'query.start_time_min': query.startMin,
    'query.start_time_max': query.startMax,
    'query.num_traces': String(query.numTraces),
  });
  const url = new URL(`api/v3/traces?${params.toString()}`, jaegerUrl.endsWith('/') ? jaegerUrl : `${jaegerUrl}/`);
  const signal = AbortSignal.timeout(query.timeoutMs);
  let response: Response;
  try {
    response = await fetch(url, { signal });
  } catch (error) {
    throw new JaegerUnreachableError(`cannot reach Jaeger at ${jaegerUrl}: ${causeOf(error)}`);
  }
  const body = await readBounded(response, query.maxAnswerBytes, jaegerUrl);
  // Any other server answers 404 for this path too; only Jaeger's own 404 means "no traces".
  if (response.status === 404 && isJaegerNoTraces(body)) return { result: { resourceSpans: [] } };
  if (!response.ok) {
    const hint = response.status === 404 ? ` (is ${jaegerUrl} Jaeger's query port?)` : '';
    throw new JaegerUnreachableError(`Jaeger answered ${response.status} for ${url.pathname}${hint}: ${body.slice(0, 300)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new JaegerAnswerError(`Jaeger's answer is not JSON (is ${jaegerUrl} Jaeger's query port?): ${body.slice(0, 200)}`);
  }
  if (!isTraceList(parsed)) throw new JaegerAnswerError(`Jaeger's answer is not an api/v3 trace list, {"result":{"resourceSpans":[…]}} (is ${jaegerUrl} Jaeger's query port?): ${body.slice(0, 200)}`);
  return parsed;
}

/** The body as text, refusing to hold more than `maxBytes` of it. */
async function readBounded(response: Response, maxBytes: number, jaegerUrl: string): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw new AnswerTooLargeError(`Jaeger's answer is ${declared} bytes, more than ${maxBytes}`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    // Leaving the loop early cancels the stream, which closes the connection.
    for await (const chunk of response.body ?? []) {
      total += chunk.byteLength;
      if (total > maxBytes) break;
      chunks.push(chunk);
    }
  } catch (error) {
    throw new JaegerUnreachableError(`lost the connection to Jaeger at ${jaegerUrl} while reading its answer: ${causeOf(error)}`);
  }
  if (total > maxBytes) throw new AnswerTooLargeError(`Jaeger's answer grew past ${maxBytes} bytes`);
  return Buffer.concat(chunks).toString('utf8');
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

/**
 * `{ result: { resourceSpans: [...] } }`, the envelope of every api/v3 trace
 * answer with traces in it (Jaeger answers 404 when there are none, so
 * `{"result":{}}` is not an empty list but a wrong shape).
 */
function isTraceList(parsed: unknown): parsed is OtlpTracesJson {
  if (typeof parsed !== 'object' || parsed === null || !('result' in parsed)) return false;
  const { result } = parsed;
  return typeof result === 'object' && result !== null && 'resourceSpans' in result && Array.isArray(result.resourceSpans);
}

function causeOf(error: unknown): string {
  const { cause, message } = error as Error;
  return cause instanceof Error ? cause.message : message;
}
