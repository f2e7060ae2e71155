import { propagation, type Baggage, type BaggageEntry } from '@opentelemetry/api';
import { BAGGAGE } from './keys.js';
import type { RequestIdentity } from './request-context.js';

type BaggageIdentity = Pick<RequestIdentity, 'correlationId' | 'tenantId' | 'userId' | 'jobId'>;

/**
 * A request's identity baggage (`isotrace.correlation_id`, `.tenant_id`,
 * `.user_id`, `.job_id` when set), read from the request context when asked
 * rather than built as a baggage object for every request: most requests
 * never read or send their baggage. It answers like the API's own baggage
 * (same entries, same order, copies of entries), and a change (setEntry,
 * removeEntry, …) returns an ordinary baggage with the change made.
 */
export class RequestBaggage implements Baggage {
  /** The request whose identity this baggage is. */
  readonly identity: BaggageIdentity;

  constructor(identity: BaggageIdentity) {
    this.identity = identity;
  }

  getEntry(key: string): BaggageEntry | undefined {
    const value = identityValue(this.identity, key);
    return value === undefined ? undefined : { value };
  }

  getAllEntries(): [string, BaggageEntry][] {
    const { correlationId, tenantId, userId, jobId } = this.identity;
    const entries: [string, BaggageEntry][] = [
      [BAGGAGE.correlationId, { value: correlationId }],
      [BAGGAGE.tenantId, { value: tenantId }],
      [BAGGAGE.userId, { value: userId }],
    ];
    if (jobId !== undefined) entries.push([BAGGAGE.jobId, { value: jobId }]);
    return entries;
  }

  setEntry(key: string, entry: BaggageEntry): Baggage {
    return this.#materialized().setEntry(key, entry);
  }

  removeEntry(key: string): Baggage {
    return this.#materialized().removeEntry(key);
  }

  removeEntries(...keys: string[]): Baggage {
    return this.#materialized().removeEntries(...keys);
  }

  clear(): Baggage {
    return propagation.createBaggage();
  }

  #materialized(): Baggage {
    return propagation.createBaggage(Object.fromEntries(this.getAllEntries()));
  }
}

function identityValue(identity: BaggageIdentity, key: string): string | undefined {
  switch (key) {
    case BAGGAGE.correlationId:
      return identity.correlationId;
    case BAGGAGE.tenantId:
      return identity.tenantId;
    case BAGGAGE.userId:
      return identity.userId;
    case BAGGAGE.jobId:
      return identity.jobId;
    default:
      return undefined;
  }
}
