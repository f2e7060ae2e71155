import type * as CoreModule from '@opentelemetry/core';
import type * as ResourcesModule from '@opentelemetry/resources';
import type { Resource } from '@opentelemetry/resources';
import type * as SdkTraceModule from '@opentelemetry/sdk-trace';
import type { BatchSpanProcessorOptions, Sampler } from '@opentelemetry/sdk-trace';
import type { OtlpSignal } from './export-agents.js';
import { loadModule } from './load-module.js';
import { reportOnce } from './report.js';

/*
 * The OpenTelemetry SDK environment variables isotrace honours
 * (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/).
 * Order everywhere: an explicit startTracing() option, then the variable, then
 * the default. A variable with a value that cannot be used is reported once and
 * ignored, as the specification asks; it never stops the application.
 */

const SERVICE_NAME = 'service.name';

// Loaded when startTracing() reads the variables: `import 'isotrace'` (a worker thread's too) loads no SDK package.
const getBooleanFromEnv = (name: string): boolean => loadModule<typeof CoreModule>('@opentelemetry/core').getBooleanFromEnv(name);
const getStringFromEnv = (name: string): string | undefined => loadModule<typeof CoreModule>('@opentelemetry/core').getStringFromEnv(name);

/**
 * The service name spans carry: the `serviceName` option, else OTEL_SERVICE_NAME,
 * else `service.name` in OTEL_RESOURCE_ATTRIBUTES, else the one in the `resource`
 * option; undefined when none gives one.
 */
export function resolveServiceName(options: { serviceName?: string | undefined; resource?: Resource | undefined }): string | undefined {
  if (options.serviceName !== undefined) return options.serviceName;
  // envDetector applies the specification's rule: OTEL_SERVICE_NAME wins over OTEL_RESOURCE_ATTRIBUTES.
  const fromEnv = loadModule<typeof ResourcesModule>('@opentelemetry/resources').envDetector.detect().attributes?.[SERVICE_NAME];
  if (typeof fromEnv === 'string' && fromEnv.trim() !== '') return fromEnv;
  const fromResource = options.resource?.attributes[SERVICE_NAME];
  return typeof fromResource === 'string' && fromResource.trim() !== '' ? fromResource : undefined;
}

/** OTEL_SDK_DISABLED: only `true` (any case) disables, as the specification says. */
export function sdkDisabled(): boolean {
  return getBooleanFromEnv('OTEL_SDK_DISABLED') === true;
}

const RATIO_SAMPLERS = new Set(['traceidratio', 'parentbased_traceidratio']);

/**
 * The sampler OTEL_TRACES_SAMPLER (and OTEL_TRACES_SAMPLER_ARG) name, or
 * undefined when unset. An unknown name (`jaeger_remote`, `xray`, a typo) is
 * reported and means the default, parentbased_always_on.
 */
export function samplerFromEnv(): Sampler | undefined {
  const name = getStringFromEnv('OTEL_TRACES_SAMPLER')?.trim().toLowerCase();
  if (!name) return undefined;
  const ratio = RATIO_SAMPLERS.has(name) ? samplerRatioFromEnv() : 1;
  const { AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler, TraceIdRatioBasedSampler } = loadModule<typeof SdkTraceModule>('@opentelemetry/sdk-trace');
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
    default:
      reportOnce('env-sampler', `OTEL_TRACES_SAMPLER=${JSON.stringify(name)} is not a sampler isotrace supports (always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio); using parentbased_always_on.`);
      return undefined;
  }
}

/** OTEL_TRACES_SAMPLER_ARG for the ratio samplers: a number in [0, 1], default 1. */
function samplerRatioFromEnv(): number {
  const raw = getStringFromEnv('OTEL_TRACES_SAMPLER_ARG')?.trim();
  if (raw === undefined || raw === '') return 1;
  const ratio = Number(raw);
  if (Number.isFinite(ratio) && ratio >= 0 && ratio <= 1) return ratio;
  reportOnce('env-sampler-arg', `OTEL_TRACES_SAMPLER_ARG=${JSON.stringify(raw)} is not a ratio between 0 and 1; using 1.`);
  return 1;
}

/** The batch span processor settings in OTEL_BSP_* (only those set, so the options and defaults fill the rest). */
export function batchSettingsFromEnv(): Pick<BatchSpanProcessorOptions, 'maxQueueSize' | 'maxExportBatchSize' | 'scheduledDelayMillis' | 'exportTimeoutMillis'> {
  const settings = {
    maxQueueSize: numberFromEnv('OTEL_BSP_MAX_QUEUE_SIZE', 1),
    maxExportBatchSize: numberFromEnv('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 1),
    scheduledDelayMillis: numberFromEnv('OTEL_BSP_SCHEDULE_DELAY', 0),
    exportTimeoutMillis: numberFromEnv('OTEL_BSP_EXPORT_TIMEOUT', 1),
  };
  return Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined));
}

/** Whether OTEL_EXPORTER_OTLP_<SIGNAL>_TIMEOUT or OTEL_EXPORTER_OTLP_TIMEOUT is set: the exporter then reads it itself. */
export function otlpTimeoutInEnv(signal: OtlpSignal): boolean {
  return otlpTimeoutFromEnv(signal) !== undefined;
}

/** The export timeout the OTLP exporters read from the environment (ms): OTEL_EXPORTER_OTLP_<SIGNAL>_TIMEOUT, else OTEL_EXPORTER_OTLP_TIMEOUT. */
export function otlpTimeoutFromEnv(signal: OtlpSignal): number | undefined {
  return numberFromEnv(`OTEL_EXPORTER_OTLP_${signal}_TIMEOUT`, 1) ?? numberFromEnv('OTEL_EXPORTER_OTLP_TIMEOUT', 1);
}

/**
 * The OTLP exporters that run on the event loop (metrics, and spans when they
 * cannot be exported from a worker thread) speak OTLP/HTTP with JSON bodies; a
 * protocol variable asking for another is reported once: the collector must
 * accept http/json there.
 */
export function reportUnsupportedOtlpProtocol(signal: OtlpSignal): void {
  const variable = [`OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`, 'OTEL_EXPORTER_OTLP_PROTOCOL'].find((name) => getStringFromEnv(name)?.trim());
  const protocol = variable && getStringFromEnv(variable)!.trim();
  if (!protocol || protocol === 'http/json') return;
  reportOnce(`env-otlp-protocol-${signal}`, `${variable}=${JSON.stringify(protocol)} is not honoured here: this OTLP exporter sends JSON bodies (http/json), which every OpenTelemetry Collector accepts on port 4318.`);
}

/** A whole number at least `min`, or undefined when unset; anything else is reported and ignored. */
function numberFromEnv(name: string, min: number): number | undefined {
  const raw = getStringFromEnv(name)?.trim();
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (Number.isInteger(value) && value >= min) return value;
  reportOnce(`env-${name}`, `${name}=${JSON.stringify(raw)} must be a whole number of at least ${min}; ignored.`);
  return undefined;
}
