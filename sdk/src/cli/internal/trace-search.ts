import { spansFromOtlpJson } from '../../audit/internal/otlp-json.js';
import type { AuditSpan } from '../../audit/types.js';
import { AnswerTooLargeError, fetchTracePage, JaegerAnswerError } from './jaeger-client.js';

/** Whether the search saw every trace of the window, and if not, why it stopped. */
export type Coverage = { complete: true } | { complete: false; reason: string };

/** What to search: a service's traces starting in [startMin, startMax] (epoch ms), at most `limit` of them. */
export interface TraceSearch {
  jaeger: string;
  service: string;
  startMin: number;
  startMax: number;
  limit: number;
}

/** Traces asked for per answer; fewer when answers grow past MAX_ANSWER_BYTES. */
export const PAGE_TRACES = 100;
/** The most of one answer held in memory; a bigger one is asked for again with fewer traces. */
export const MAX_ANSWER_BYTES = 32 * 1024 * 1024;
const ANSWER_TIMEOUT_MS = 30_000;

/** A slice of the window, in microseconds (Jaeger takes RFC 3339 with nanoseconds; milliseconds are too coarse to split a busy second). */
interface Slice {
  fromUs: number;
  toUs: number;
  numTraces: number;
}

/**
 * Finds every trace of the service that starts in the window and hands each
 * one's spans to `onTrace`. api/v3 has no cursor, and which traces an answer
 * holds when more match is the storage's choice, so a full answer means
 * "maybe more": its slice is halved and both halves are searched, until every
 * answer has room to spare. A trace met again (at a halving boundary) is
 * handed over again. Stops early, saying why, when more than `limit`
 * traces match or a single trace makes an answer too big to hold; rejects
 * with JaegerUnreachableError or JaegerAnswerError when Jaeger fails.
 */
export async function searchTraces(search: TraceSearch, onTrace: (traceId: string, spans: AuditSpan[]) => void): Promise<Coverage> {
  const seen = new Set<string>();
  // One more than the limit, so a window holding exactly `limit` traces is seen to be complete.
  const pending: Slice[] = [{ fromUs: search.startMin * 1000, toUs: search.startMax * 1000, numTraces: Math.min(PAGE_TRACES, search.limit + 1) }];
  for (let slice = pending.pop(); slice !== undefined; slice = pending.pop()) {
    const page = await fetchSlice(search, slice);
    if ('reason' in page) return page;
    for (const [traceId, spans] of page.traces) {
      if (!seen.has(traceId) && seen.size >= search.limit) {
        return { complete: false, reason: `more than ${search.limit} traces match (--limit ${search.limit}); ${seen.size} were audited, the rest were not` };
      }
      seen.add(traceId);
      onTrace(traceId, spans);
    }
    if (page.traces.size < page.numTraces) continue;
    if (slice.toUs - slice.fromUs < 2) {
      return { complete: false, reason: `more than ${page.numTraces} traces start at ${isoMicros(slice.fromUs)}, more than one answer can list` };
    }
    const middle = Math.floor((slice.fromUs + slice.toUs) / 2);
    // Both ends are inclusive: a trace starting at `middle` comes twice and is counted once. The newer half is searched first.
    pending.push({ fromUs: slice.fromUs, toUs: middle, numTraces: page.numTraces }, { fromUs: middle, toUs: slice.toUs, numTraces: page.numTraces });
  }
  return { complete: true };
}

/** One slice's traces, asking again for fewer when the answer is too big to hold. */
async function fetchSlice(search: TraceSearch, slice: Slice): Promise<{ traces: Map<string, AuditSpan[]>; numTraces: number } | Coverage & { complete: false }> {
  for (let numTraces = slice.numTraces; ; numTraces = Math.max(1, Math.floor(numTraces / 10))) {
    try {
      const answer = await fetchTracePage(search.jaeger, {
        service: search.service,
        startMin: isoMicros(slice.fromUs),
        startMax: isoMicros(slice.toUs),
        numTraces,
        maxAnswerBytes: MAX_ANSWER_BYTES,
        timeoutMs: ANSWER_TIMEOUT_MS,
      });
      return { traces: byTrace(answer), numTraces };
    } catch (error) {
      if (!(error instanceof AnswerTooLargeError)) throw error;
      if (numTraces === 1) {
        return { complete: false, reason: `one trace starting between ${isoMicros(slice.fromUs)} and ${isoMicros(slice.toUs)} makes an answer over ${MAX_ANSWER_BYTES / 1024 / 1024} MiB, too big to audit` };
      }
    }
  }
}

/** The answer's spans grouped by trace; a malformed answer is Jaeger's failure, never "no spans". */
function byTrace(answer: Parameters<typeof spansFromOtlpJson>[0]): Map<string, AuditSpan[]> {
  let spans: AuditSpan[];
  try {
    spans = spansFromOtlpJson(answer);
  } catch (error) {
    throw new JaegerAnswerError(`Jaeger's answer is not a valid OTLP trace list (${(error as Error).message})`);
  }
  const traces = new Map<string, AuditSpan[]>();
  for (const span of spans) {
    const trace = traces.get(span.traceId);
    if (trace) trace.push(span);
    else traces.set(span.traceId, [span]);
  }
  return traces;
}

/** RFC 3339 with microseconds, e.g. 2025-01-02T03:04:05.678901Z. */
export function isoMicros(us: number): string {
  const iso = new Date(Math.floor(us / 1000)).toISOString();
  return `${iso.slice(0, -1)}${String(us % 1000).padStart(3, '0')}Z`;
}
