/**
 * The export thread's request bodies (export-thread/request-bodies.ts): a
 * body's buffer is written again only after the collector accepted its
 * export and no socket has bytes left to send; a failed export's body (its
 * socket may still hold it), one never sent and one written elsewhere are
 * left alone.
 */
import { describe, expect, it } from 'vitest';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { RequestBodies } from '../../../sdk/src/tracing/internal/export-thread/request-bodies.ts';

/** An exporter that serializes each export into a spare body when there is one (as the thread's serializer does) and answers when told. */
function collector(bodies: RequestBodies, answerAtOnce?: ExportResult): { exporter: SpanExporter; sent: Uint8Array[]; answer: (result: ExportResult) => void } {
  const sent: Uint8Array[] = [];
  const pending: Array<(result: ExportResult) => void> = [];
  const exporter: SpanExporter = {
    export: (_spans, done) => {
      const body = bodies.buffer(64).subarray(0, 32);
      bodies.serialized(body);
      sent.push(body);
      if (answerAtOnce) done(answerAtOnce);
      else pending.push(done);
    },
    shutdown: () => Promise.resolve(),
  };
  return { exporter, sent, answer: (result) => pending.shift()!(result) };
}

const SUCCESS: ExportResult = { code: ExportResultCode.SUCCESS };
const FAILED: ExportResult = { code: ExportResultCode.FAILED, error: new Error('collector down') };

describe('request bodies', () => {
  it('writes the next export into the body of one the collector accepted, only once it answered', () => {
    const bodies = new RequestBodies();
    const { exporter, sent, answer } = collector(bodies);
    const reusing = bodies.reusing(exporter, () => true);
    const results: ExportResult[] = [];
    reusing.export([] as ReadableSpan[], (result) => results.push(result));
    // Not answered yet: the next export gets a buffer of its own.
    reusing.export([] as ReadableSpan[], (result) => results.push(result));
    expect(sent[1]!.buffer).not.toBe(sent[0]!.buffer);
    answer(SUCCESS);
    reusing.export([] as ReadableSpan[], (result) => results.push(result));
    expect(sent[2]!.buffer).toBe(sent[0]!.buffer);
    expect(results).toEqual([SUCCESS]);
  });

  it('never reuses the body of an accepted export while a socket still has bytes to send (a collector that answered before reading it all)', () => {
    const bodies = new RequestBodies();
    const { exporter, sent, answer } = collector(bodies);
    let allSent = false;
    const reusing = bodies.reusing(exporter, () => allSent);
    reusing.export([] as ReadableSpan[], () => {});
    answer(SUCCESS);
    reusing.export([] as ReadableSpan[], () => {});
    expect(sent[1]!.buffer).not.toBe(sent[0]!.buffer);
    allSent = true;
    answer(SUCCESS);
    reusing.export([] as ReadableSpan[], () => {});
    expect(sent[2]!.buffer).toBe(sent[1]!.buffer);
  });

  it('never reuses the body of a failed export, nor of one answered before anything was sent', () => {
    const bodies = new RequestBodies();
    const { exporter, sent, answer } = collector(bodies);
    const reusing = bodies.reusing(exporter, () => true);
    reusing.export([] as ReadableSpan[], () => {});
    answer(FAILED);
    reusing.export([] as ReadableSpan[], () => {});
    expect(sent[1]!.buffer).not.toBe(sent[0]!.buffer);

    const atOnce = new RequestBodies();
    const skipped = collector(atOnce, SUCCESS);
    const skipping = atOnce.reusing(skipped.exporter, () => true);
    skipping.export([] as ReadableSpan[], () => {});
    skipping.export([] as ReadableSpan[], () => {});
    expect(skipped.sent[1]!.buffer).not.toBe(skipped.sent[0]!.buffer);
  });

  it('never gives back a buffer the body outgrew (the serializer moved on to a larger one)', () => {
    const bodies = new RequestBodies();
    const sent: Uint8Array[] = [];
    const answers: Array<(result: ExportResult) => void> = [];
    const reusing = bodies.reusing(
      {
        export: (_spans, done) => {
          const lent = bodies.buffer(16);
          const body = Buffer.allocUnsafe(4096).subarray(0, 100);
          bodies.serialized(body);
          sent.push(lent);
          answers.push(done);
        },
        shutdown: () => Promise.resolve(),
      },
      () => true,
    );
    reusing.export([] as ReadableSpan[], () => {});
    answers[0]!(SUCCESS);
    reusing.export([] as ReadableSpan[], () => {});
    expect(sent[1]).not.toBe(sent[0]);
  });
});
