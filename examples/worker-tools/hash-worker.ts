// The worker file: hashes a document many rounds (CPU-heavy, so it belongs off the
// event loop). It runs in the submitting request's context: the tenant and user it
// reports, and the span it makes, are the caller's.
import { createHash } from 'node:crypto';
import { trace } from '@opentelemetry/api';
import { getRequestContext } from 'isotrace';
import { defineWorkerTask } from 'isotrace/workers';

export interface HashJob {
  document: string;
  rounds: number;
}

export interface HashResult {
  digest: string;
  rounds: number;
  tenantId: string;
  userId: string;
}

export default defineWorkerTask(({ document, rounds }: HashJob): HashResult => {
  const { tenantId, userId } = getRequestContext();
  return trace.getTracer('worker-tools-example').startActiveSpan('hash.rounds', { attributes: { 'hash.rounds': rounds } }, (span) => {
    try {
      let digest = createHash('sha256').update(document).digest();
      for (let i = 1; i < rounds; i++) digest = createHash('sha256').update(digest).digest();
      return { digest: digest.toString('hex'), rounds, tenantId, userId };
    } finally {
      span.end();
    }
  });
});
