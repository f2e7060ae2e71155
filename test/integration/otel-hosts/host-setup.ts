// The set-up every in-process host test shares: the service's own NodeSDK with
// createIsotrace()'s parts and the host's span processor in it, and the listeners
// the scenario talks to (the host's backend, the propagateTo destination, another).
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { SpanProcessor } from '@opentelemetry/sdk-trace';
import type { Tracing } from 'isotrace';
import { createIsotrace } from 'isotrace/otel';
import { startRecorder, type Recorder } from '../../fixtures/otel-hosts/recorder.ts';
import { runScenario, type ScenarioResult } from '../../fixtures/otel-hosts/scenario.ts';
import { ViolationCountReader } from '../../fixtures/otel-hosts/violation-reader.ts';

/** What differs between hosts. */
export interface HostOptions {
  /** The host's own span processor, exporting to `backend` (the listener standing in for its backend). */
  processor(backend: Recorder): SpanProcessor;
  /** Runs once the host's SDK started, before isotrace attaches (e.g. Sentry.init()). */
  afterSdkStart?(): void;
  /** Runs at close, after isotrace's shutdown and before the host SDK's (e.g. Sentry.close()). */
  beforeSdkShutdown?(): Promise<unknown>;
}

/** A host with isotrace attached: start() in beforeAll, close() in afterAll (it also closes what a failed start() left). */
export class OtelHost {
  backend!: Recorder;
  /** The propagateTo destination. */
  allowed!: Recorder;
  /** A destination that is not a propagateTo target. */
  denied!: Recorder;
  reader!: ViolationCountReader;
  tracing!: Tracing;
  #sdk: NodeSDK | undefined;
  #options: HostOptions | undefined;

  async start(options: HostOptions): Promise<void> {
    this.#options = options;
    [this.backend, this.allowed, this.denied] = await Promise.all([startRecorder(), startRecorder(), startRecorder()]);
    const isotrace = createIsotrace({ serviceName: 'agent-api', propagateTo: [`127.0.0.1:${this.allowed.port}`] });
    const hostProcessor = options.processor(this.backend);
    this.reader = new ViolationCountReader();
    this.#sdk = new NodeSDK({
      serviceName: 'agent-api',
      spanProcessors: [isotrace.spanProcessor, hostProcessor],
      textMapPropagator: isotrace.propagator,
      instrumentations: [...isotrace.instrumentations],
      metricReaders: [this.reader],
    });
    this.#sdk.start();
    options.afterSdkStart?.();
    this.tracing = await isotrace.attach();
  }

  /** The shared scenario: a request calling both destinations and a tool, plus a planted leak. */
  runScenario(): Promise<ScenarioResult> {
    return runScenario({ allowed: this.allowed.origin, denied: this.denied.origin });
  }

  async close(): Promise<void> {
    await this.tracing?.shutdown();
    await this.#options?.beforeSdkShutdown?.();
    await this.#sdk?.shutdown();
    await Promise.all([this.backend, this.allowed, this.denied].map((recorder) => recorder?.close()));
  }
}
