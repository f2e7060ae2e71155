import { MetricReader } from '@opentelemetry/sdk-metrics';
import { AUDIT } from '../../audit/internal/attributes.js';

/** A pull reader for tests: reads `isotrace.isolation.violations` on demand. */
export class ViolationReader extends MetricReader {
  /** Violations counted so far, for one check or in total. */
  async count(check?: string): Promise<number> {
    const { resourceMetrics } = await this.collect();
    let total = 0;
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const metric of scope.metrics) {
        if (metric.descriptor.name !== AUDIT.metric) continue;
        for (const point of metric.dataPoints) {
          if (check === undefined || point.attributes[AUDIT.check] === check) total += point.value as number;
        }
      }
    }
    return total;
  }

  protected override async onShutdown(): Promise<void> {}

  protected override async onForceFlush(): Promise<void> {}
}
