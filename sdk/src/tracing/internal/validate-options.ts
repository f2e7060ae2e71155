import { propagateToProblem } from '../../propagation/internal/propagation-policy.js';
import type { TracingOptions } from '../types.js';
import { resolveServiceName } from './otel-env.js';

/**
 * Every startTracing() option: the one list to extend with a new option (typed
 * against TracingOptions, so an option missing here fails to compile). Any other
 * key is a TypeError: a misspelt `propagate_to` must not silently mean "no targets".
 */
const KNOWN_OPTIONS: Record<keyof TracingOptions, true> = {
  serviceName: true,
  exporter: true,
  endpoint: true,
  propagateTo: true,
  audit: true,
  auditCallbacks: true,
  sharedStateStore: true,
  recordToolArguments: true,
  redact: true,
  sampler: true,
  instrumentHttp: true,
  flushTimeoutMs: true,
  metricReaders: true,
  maxQueueSize: true,
  instrumentations: true,
  spanProcessors: true,
  resource: true,
};

/** Instrumentations that would make a second CLIENT span per call beside isotrace's own, and send baggage past its hooks. */
const OUTBOUND_HTTP_INSTRUMENTATIONS = new Set(['@opentelemetry/instrumentation-http', '@opentelemetry/instrumentation-undici']);

const EXPORTERS = ['otlp', 'console', 'none'];
const STORE_METHODS = ['get', 'set', 'update', 'delete', 'keys'] as const;

/** Throws a TypeError naming the first startTracing() option that is wrong. */
export function validateOptions(options: TracingOptions): void {
  if (options === null || typeof options !== 'object') throw new TypeError('startTracing(options): options must be an object with at least serviceName.');
  rejectUnknownOptions(options);
  const { serviceName, exporter, endpoint, propagateTo, audit, sharedStateStore, recordToolArguments, redact, flushTimeoutMs, maxQueueSize, instrumentHttp, metricReaders } = options;
  if (serviceName !== undefined && (typeof serviceName !== 'string' || serviceName.trim() === '')) fail('serviceName', 'a non-empty string', serviceName);
  validateResource(options.resource);
  if (resolveServiceName(options) === undefined) fail('serviceName', 'a non-empty string (or set OTEL_SERVICE_NAME)', serviceName);
  if (exporter !== undefined && !EXPORTERS.includes(exporter as string) && !isSpanExporter(exporter)) fail('exporter', `one of ${EXPORTERS.join(', ')} or a SpanExporter`, exporter);
  if (endpoint !== undefined && (typeof endpoint !== 'string' || !URL.canParse(endpoint) || !/^https?:$/.test(new URL(endpoint).protocol))) fail('endpoint', 'an http(s) URL', endpoint);
  const targetProblem = propagateTo === undefined ? undefined : propagateToProblem(propagateTo);
  if (targetProblem) throw new TypeError(`startTracing: option 'propagateTo' must be ${targetProblem}.`);
  if (audit !== undefined && audit !== 'record' && audit !== 'throw') fail('audit', "'record' or 'throw'", audit);
  validateAuditCallbacks(options.auditCallbacks);
  if (sharedStateStore !== undefined && !STORE_METHODS.every((m) => typeof (sharedStateStore as unknown as Record<string, unknown>)?.[m] === 'function')) {
    fail('sharedStateStore', `a SharedStateStore (with ${STORE_METHODS.join(', ')})`, sharedStateStore);
  }
  validateWorkerRecipe(sharedStateStore);
  if (recordToolArguments !== undefined && typeof recordToolArguments !== 'boolean') fail('recordToolArguments', 'a boolean', recordToolArguments);
  if (redact !== undefined && typeof redact !== 'function') fail('redact', 'a function', redact);
  if (instrumentHttp !== undefined && typeof instrumentHttp !== 'boolean') fail('instrumentHttp', 'a boolean', instrumentHttp);
  if (metricReaders !== undefined && !Array.isArray(metricReaders)) fail('metricReaders', 'an array of MetricReaders', metricReaders);
  if (flushTimeoutMs !== undefined && !(Number.isFinite(flushTimeoutMs) && flushTimeoutMs > 0)) fail('flushTimeoutMs', 'a positive number of ms', flushTimeoutMs);
  if (maxQueueSize !== undefined && !(Number.isInteger(maxQueueSize) && maxQueueSize > 0)) fail('maxQueueSize', 'a positive integer', maxQueueSize);
  validateInstrumentations(options.instrumentations, instrumentHttp !== false);
  validateSpanProcessors(options.spanProcessors);
}

/** A store's worker recipe must say what to import and call, in data that can cross threads. */
function validateWorkerRecipe(store: TracingOptions['sharedStateStore']): void {
  if (typeof store?.workerRecipe !== 'function') return;
  const recipe = store.workerRecipe() as unknown;
  if (recipe === undefined) return;
  const { module, factory } = (recipe ?? {}) as { module?: unknown; factory?: unknown };
  if (typeof module !== 'string' || module === '' || typeof factory !== 'string' || factory === '') {
    fail('sharedStateStore', 'a store whose workerRecipe() returns undefined or { module, factory, options? } (module and factory non-empty strings)', recipe);
  }
  try {
    structuredClone(recipe);
  } catch (error) {
    throw new TypeError(`startTracing: option 'sharedStateStore' has a workerRecipe() that cannot be sent to worker threads (structured clone failed: ${(error as Error).message}).`);
  }
}

function validateResource(resource: TracingOptions['resource']): void {
  if (resource === undefined) return;
  const candidate = resource as unknown as { attributes?: unknown; merge?: unknown } | null;
  if (typeof candidate !== 'object' || candidate === null || typeof candidate.merge !== 'function' || typeof candidate.attributes !== 'object') {
    fail('resource', "a Resource (resourceFromAttributes() from '@opentelemetry/resources')", resource);
  }
}

function validateInstrumentations(value: TracingOptions['instrumentations'], ownHttp: boolean): void {
  if (value === undefined) return;
  if (!Array.isArray(value)) fail('instrumentations', 'an array of Instrumentations', value);
  for (const instrumentation of value.flat()) {
    const candidate = instrumentation as unknown as { instrumentationName?: unknown; enable?: unknown; disable?: unknown } | null;
    if (typeof candidate?.enable !== 'function' || typeof candidate.disable !== 'function') fail('instrumentations', 'an array of Instrumentations', instrumentation);
    if (ownHttp && OUTBOUND_HTTP_INSTRUMENTATIONS.has(String(candidate.instrumentationName))) {
      throw new TypeError(
        `startTracing: option 'instrumentations' holds ${String(candidate.instrumentationName)}, which isotrace already runs (its own make the CLIENT spans and decide where baggage goes). ` +
          "Leave it out (getNodeAutoInstrumentations({ '@opentelemetry/instrumentation-http': { enabled: false }, '@opentelemetry/instrumentation-undici': { enabled: false } })), or set instrumentHttp: false.",
      );
    }
  }
}

function validateSpanProcessors(value: TracingOptions['spanProcessors']): void {
  if (value === undefined) return;
  if (!Array.isArray(value)) fail('spanProcessors', 'an array of SpanProcessors', value);
  const methods = ['onStart', 'onEnd', 'forceFlush', 'shutdown'];
  for (const processor of value) {
    if (!methods.every((method) => typeof (processor as unknown as Record<string, unknown> | null)?.[method] === 'function')) fail('spanProcessors', `an array of SpanProcessors (with ${methods.join(', ')})`, processor);
  }
}

function validateAuditCallbacks(value: TracingOptions['auditCallbacks']): void {
  if (value === undefined || typeof value === 'boolean') return;
  const expected = 'a boolean or { sampleRate?: number between 0 and 1, stacks?: boolean }';
  if (value === null || typeof value !== 'object') fail('auditCallbacks', expected, value);
  const unknown = Object.keys(value).find((key) => key !== 'sampleRate' && key !== 'stacks');
  if (unknown !== undefined) throw new TypeError(`startTracing: option 'auditCallbacks' has an unknown key '${unknown}'; it must be ${expected}.`);
  const { sampleRate, stacks } = value;
  if (sampleRate !== undefined && !(typeof sampleRate === 'number' && sampleRate >= 0 && sampleRate <= 1)) fail('auditCallbacks.sampleRate', 'a number between 0 and 1', sampleRate);
  if (stacks !== undefined && typeof stacks !== 'boolean') fail('auditCallbacks.stacks', 'a boolean', stacks);
}

function rejectUnknownOptions(options: TracingOptions): void {
  const unknown = Object.keys(options).filter((key) => !Object.hasOwn(KNOWN_OPTIONS, key));
  if (unknown.length === 0) return;
  const described = unknown.map((key) => {
    const suggestion = closestOption(key);
    return suggestion ? `'${key}' (did you mean '${suggestion}'?)` : `'${key}'`;
  });
  throw new TypeError(`startTracing: unknown option${unknown.length > 1 ? 's' : ''} ${described.join(', ')}. Known options: ${Object.keys(KNOWN_OPTIONS).join(', ')}.`);
}

/** The known option a misspelt key most likely meant: same letters ignoring case and separators, else at most two edits away. */
function closestOption(key: string): string | undefined {
  const wanted = normalized(key);
  let best: { option: string; distance: number } | undefined;
  for (const option of Object.keys(KNOWN_OPTIONS)) {
    const distance = editDistance(wanted, normalized(option));
    if (distance <= 2 && (!best || distance < best.distance)) best = { option, distance };
  }
  return best?.option;
}

function normalized(key: string): string {
  return key.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** Levenshtein distance (option names are short). */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

function isSpanExporter(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as { export?: unknown }).export === 'function' && typeof (value as { shutdown?: unknown }).shutdown === 'function';
}

function fail(option: string, expected: string, actual: unknown): never {
  throw new TypeError(`startTracing: option '${option}' must be ${expected}; got ${actual === null ? 'null' : typeof actual === 'string' ? JSON.stringify(actual) : typeof actual}.`);
}
