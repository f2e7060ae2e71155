import { createContextKey, type Context } from '@opentelemetry/api';

/**
 * A marker attach() puts in the context of a probe (a propagator inject, a
 * span start): isotrace's parts that see it note that they were called, and do
 * nothing else, so attach() learns what the host's setup really runs.
 */
export class SetupProbe {
  readonly #seen = new Set<object>();

  /** Whether `part` was called with this probe's context. */
  saw(part: object): boolean {
    return this.#seen.has(part);
  }

  note(part: object): void {
    this.#seen.add(part);
  }
}

const SETUP_PROBE = createContextKey('isotrace.setup-probe');

/** `ctx` carrying the probe. */
export function withProbe(ctx: Context, probe: SetupProbe): Context {
  return ctx.setValue(SETUP_PROBE, probe);
}

/** True when `ctx` is a probe's context (noted as seen by `part`): the caller must then do nothing else. */
export function answerProbe(ctx: Context, part: object): boolean {
  const probe = ctx.getValue(SETUP_PROBE);
  if (!(probe instanceof SetupProbe)) return false;
  probe.note(part);
  return true;
}
