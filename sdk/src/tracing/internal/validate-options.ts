import type { TracingOptions } from '../types.js';

const EXPORTERS = ['otlp', 'console', 'none'];
const STORE_METHODS = ['get', 'set', 'update', 'delete', 'keys'] as const;

/** Throws a TypeError naming the first startTracing() option that is wrong. */
export function validateOptions(options: TracingOptions): void {
  if (options === null || typeof options !== 'object') throw new TypeError('startTracing(options): options must be an object with at least serviceName.');
  const { serviceName, exporter, endpoint, propagateTo, audit, sharedStateStore, recordToolArguments, redact, flushTimeoutMs, maxQueueSize, instrumentHttp, metricReaders } = options;
  if (typeof serviceName !== 'string' || serviceName.trim() === '') fail('serviceName', 'a non-empty string', serviceName);
  if (exporter !== undefined && !EXPORTERS.includes(exporter as string) && !isSpanExporter(exporter)) fail('exporter', `one of ${EXPORTERS.join(', ')} or a SpanExporter`, exporter);
  if (endpoint !== undefined && (typeof endpoint !== 'string' || !URL.canParse(endpoint) || !/^https?:$/.test(new URL(endpoint).protocol))) fail('endpoint', 'an http(s) URL', endpoint);
  if (propagateTo !== undefined && ![propagateTo].flat().every(isTarget)) fail('propagateTo', 'host strings, URL prefixes, RegExps or predicates', propagateTo);
  if (audit !== undefined && audit !== 'record' && audit !== 'throw') fail('audit', "'record' or 'throw'", audit);
  if (sharedStateStore !== undefined && !STORE_METHODS.every((m) => typeof (sharedStateStore as unknown as Record<string, unknown>)?.[m] === 'function')) {
    fail('sharedStateStore', `a SharedStateStore (with ${STORE_METHODS.join(', ')})`, sharedStateStore);
  }
  if (recordToolArguments !== undefined && typeof recordToolArguments !== 'boolean') fail('recordToolArguments', 'a boolean', recordToolArguments);
  if (redact !== undefined && typeof redact !== 'function') fail('redact', 'a function', redact);
  if (instrumentHttp !== undefined && typeof instrumentHttp !== 'boolean') fail('instrumentHttp', 'a boolean', instrumentHttp);
  if (metricReaders !== undefined && !Array.isArray(metricReaders)) fail('metricReaders', 'an array of MetricReaders', metricReaders);
  if (flushTimeoutMs !== undefined && !(Number.isFinite(flushTimeoutMs) && flushTimeoutMs > 0)) fail('flushTimeoutMs', 'a positive number of ms', flushTimeoutMs);
  if (maxQueueSize !== undefined && !(Number.isInteger(maxQueueSize) && maxQueueSize > 0)) fail('maxQueueSize', 'a positive integer', maxQueueSize);
}

function isSpanExporter(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as { export?: unknown }).export === 'function' && typeof (value as { shutdown?: unknown }).shutdown === 'function';
}

function isTarget(value: unknown): boolean {
  return (typeof value === 'string' && value.length > 0) || value instanceof RegExp || typeof value === 'function';
}

function fail(option: string, expected: string, actual: unknown): never {
  throw new TypeError(`startTracing: option '${option}' must be ${expected}; got ${actual === null ? 'null' : typeof actual === 'string' ? JSON.stringify(actual) : typeof actual}.`);
}
