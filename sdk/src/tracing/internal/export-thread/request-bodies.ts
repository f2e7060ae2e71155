import type { ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';

/** Spare bodies kept: exports under way at once (the batcher's four) are served from them in a steady load. */
const MAX_SPARE_BODIES = 4;
/** ExportResultCode.SUCCESS (a const enum of @opentelemetry/core, which the thread loads lazily). */
const SUCCESS = 0;

/**
 * Request bodies written into the buffers of earlier ones. Each body is a
 * large buffer outside V8's heap; one allocated per export made the export
 * thread's heap run a full collection every few hundred milliseconds (V8
 * counts such buffers against its limits), about as much CPU as
 * serializing. A body is used again only after the collector accepted its
 * export (a 2xx answer, retries included) and once `allSent()` says no
 * socket still holds bytes to send: a collector may answer before it has
 * read the body, and the socket reads what is left of it from this buffer. A
 * failed, timed-out or abandoned export's body is never reused (its socket
 * may still hold it), nor one that outgrew its buffer.
 */
export class RequestBodies {
  readonly #spares: Buffer[] = [];
  /** The buffer lent to the export under way, and the body it serialized (serialization happens inside export(), synchronously). */
  #lent: Buffer | undefined;
  #serialized: Uint8Array | undefined;

  /** A buffer of at least `size` bytes for the next body: a spare one, else a new one (its own memory, never a slice of Node's shared pool: it is written again). */
  buffer(size: number): Buffer {
    const spare = this.#spares.pop();
    this.#lent = spare !== undefined && spare.length >= size ? spare : Buffer.allocUnsafeSlow(size);
    return this.#lent;
  }

  /** Tells which body the export under way serialized. */
  serialized(body: Uint8Array): void {
    this.#serialized = body;
  }

  /** The exporter, giving back the buffer of every export the collector accepted once `allSent()` (checked then) says all of it went out. */
  reusing(inner: SpanExporter, allSent: () => boolean): SpanExporter {
    return {
      export: (spans: ReadableSpan[], done: (result: ExportResult) => void) => {
        this.#lent = undefined;
        this.#serialized = undefined;
        // Known once export() returns: a result given synchronously (nothing sent) leaves the buffer alone.
        const exported: { lent?: Buffer } = {};
        inner.export(spans, (result) => {
          if (result.code === SUCCESS && exported.lent !== undefined && allSent()) this.#giveBack(exported.lent);
          done(result);
        });
        exported.lent = this.#takeLent();
      },
      shutdown: () => inner.shutdown(),
      ...(inner.forceFlush ? { forceFlush: () => inner.forceFlush!() } : {}),
    };
  }

  /** The buffer lent to the export just started, when its body is in it (not when it outgrew it). */
  #takeLent(): Buffer | undefined {
    const lent = this.#lent !== undefined && this.#serialized?.buffer === this.#lent.buffer ? this.#lent : undefined;
    this.#lent = undefined;
    this.#serialized = undefined;
    return lent;
  }

  #giveBack(buffer: Buffer): void {
    if (this.#spares.length < MAX_SPARE_BODIES) this.#spares.push(buffer);
  }
}
