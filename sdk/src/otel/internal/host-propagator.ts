import type { Context, TextMapGetter, TextMapPropagator, TextMapSetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { DestinationBaggagePropagator } from '../../propagation/internal/destination-baggage-propagator.js';
import { answerProbe } from './setup-probe.js';

/**
 * isotrace's propagator in a host's setup: W3C traceparent everywhere, and
 * baggage to the propagateTo destinations only while isotrace is attached
 * (before attach() and after shutdown() it writes none: fail closed). Answers
 * attach()'s probe instead of injecting.
 */
export class HostPropagator implements TextMapPropagator {
  readonly #traceContext = new W3CTraceContextPropagator();
  readonly #baggage: DestinationBaggagePropagator;
  #attached = false;

  constructor(baggage: DestinationBaggagePropagator) {
    this.#baggage = baggage;
  }

  /** Baggage flows from now on (attach()). */
  start(): void {
    this.#attached = true;
  }

  /** No more baggage (shutdown()); traceparent still flows, the host's tracing goes on. */
  stop(): void {
    this.#attached = false;
  }

  inject(ctx: Context, carrier: unknown, setter: TextMapSetter): void {
    if (answerProbe(ctx, this)) return;
    this.#traceContext.inject(ctx, carrier, setter);
    if (this.#attached) this.#baggage.inject(ctx, carrier, setter);
  }

  extract(ctx: Context, carrier: unknown, getter: TextMapGetter): Context {
    return this.#baggage.extract(this.#traceContext.extract(ctx, carrier, getter), carrier, getter);
  }

  fields(): string[] {
    return [...this.#traceContext.fields(), ...this.#baggage.fields()];
  }
}
