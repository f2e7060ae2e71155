/**
 * The `summarize` tool's worker thread: hashing and summarizing text is CPU
 * work, so it runs in a piscina pool. defineWorkerTask() gives the task the
 * submitting request's context: its spans join that request's trace and
 * getRequestContext() names the same tenant and user.
 */
import { createHash } from 'node:crypto';
import { trace } from '@opentelemetry/api';
import { getRequestContext } from 'isotrace';
import { defineWorkerTask } from 'isotrace/workers';

/** What the summarize tool sends to the worker. */
export interface SummarizeTask {
  text: string;
}

/** What the worker returns. */
export interface Summary {
  /** Whose request the worker ran for, as the worker itself sees it. */
  tenantId: string;
  userId: string;
  requestId: string;
  words: number;
  /** The first words of the text. */
  preview: string;
  /** sha256 of the text, hex. */
  digest: string;
}

const PREVIEW_WORDS = 8;

export default defineWorkerTask(async ({ text }: SummarizeTask): Promise<Summary> => {
  const { tenantId, userId, requestId } = getRequestContext();
  return trace.getTracer('agent-service.summarize').startActiveSpan('summarize.digest', (span) => {
    try {
      const words = text.split(/\s+/).filter(Boolean);
      span.setAttribute('summarize.words', words.length);
      return {
        tenantId,
        userId,
        requestId,
        words: words.length,
        preview: words.slice(0, PREVIEW_WORDS).join(' '),
        digest: createHash('sha256').update(text).digest('hex'),
      };
    } finally {
      span.end();
    }
  });
});
