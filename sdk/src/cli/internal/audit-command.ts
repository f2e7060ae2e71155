import { parseArgs } from 'node:util';
import { auditSpans } from '../../audit/internal/audit-spans.js';
import { spansFromOtlpJson } from '../../audit/internal/otlp-json.js';
import type { OtlpTracesJson } from '../../audit/internal/otlp-json.js';
import type { AuditReport } from '../../audit/types.js';
import { fetchTraces, JaegerQueryError } from './jaeger-client.js';

/** Exit codes of `isotrace audit`. */
export const EXIT = { clean: 0, violations: 1, usage: 2 } as const;

export const AUDIT_USAGE = `Usage: isotrace audit --jaeger URL --service NAME [--since 1h] [--limit 500] [--json]

Fetches the service's recent traces from Jaeger's query API and audits them:
every span must carry the request id, tenant and user of its nearest request
span, and no span may carry a run-time isolation violation.

  --jaeger URL     Jaeger query base URL, e.g. http://127.0.0.1:16686
  --service NAME   service.name whose traces to audit
  --since DUR      how far back: 30s, 15m, 1h, 2d (default 1h)
  --limit N        most traces to fetch (default 500)
  --json           print a machine-readable report
  -h, --help       print this help

Exit status: 0 clean, 1 violations found, 2 usage or connection error.`;

interface Output {
  out(line: string): void;
  err(line: string): void;
}

/** Runs `isotrace audit` with the arguments after the command name; resolves to the exit code. */
export async function auditCommand(args: string[], io: Output): Promise<number> {
  let options: AuditOptions | 'help';
  try {
    options = parseAuditArgs(args);
  } catch (error) {
    io.err(`isotrace audit: ${(error as Error).message}\n\n${AUDIT_USAGE}`);
    return EXIT.usage;
  }
  if (options === 'help') {
    io.out(AUDIT_USAGE);
    return EXIT.clean;
  }
  let traces: OtlpTracesJson;
  try {
    traces = await fetchTraces(options.jaeger, { service: options.service, sinceMs: options.sinceMs, limit: options.limit });
  } catch (error) {
    if (!(error instanceof JaegerQueryError)) throw error;
    io.err(`isotrace audit: ${error.message}`);
    return EXIT.usage;
  }
  let report: AuditReport;
  try {
    report = auditSpans(spansFromOtlpJson(traces));
  } catch (error) {
    // Exit 1 means "violations found": a malformed answer must not look like one.
    io.err(`isotrace audit: Jaeger's answer is not a valid OTLP trace list (${(error as Error).message})`);
    return EXIT.usage;
  }
  const link = (traceId: string): string => `${options.jaeger.replace(/\/$/, '')}/trace/${traceId}`;
  if (options.json) {
    io.out(JSON.stringify({ jaeger: options.jaeger, service: options.service, since: options.since, ...report, violations: report.violations.map((v) => ({ ...v, link: link(v.traceId) })) }, null, 2));
  } else {
    printSummary(report, options, link, io);
  }
  return report.ok ? EXIT.clean : EXIT.violations;
}

function printSummary(report: AuditReport, options: AuditOptions, link: (traceId: string) => string, io: Output): void {
  io.out(`isotrace audit: service ${options.service}, last ${options.since}`);
  io.out(`  traces ${report.traces}  requests ${report.requests}  tool spans ${report.toolSpans}  spans ${report.spans}`);
  if (report.ok) {
    io.out('  violations 0: no span crossed between requests');
    return;
  }
  const byCheck = Object.entries(report.violationsByCheck).map(([check, count]) => `${check} ${count}`).join(', ');
  io.out(`  violations ${report.violations.length} (${byCheck})`);
  for (const v of report.violations) {
    io.out(`  VIOLATION ${v.check}: span '${v.spanName}' expected ${v.expected}, actual ${v.actual}  ${link(v.traceId)}`);
  }
}

interface AuditOptions {
  jaeger: string;
  service: string;
  sinceMs: number;
  since: string;
  limit: number;
  json: boolean;
}

function parseAuditArgs(args: string[]): AuditOptions | 'help' {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      jaeger: { type: 'string' },
      service: { type: 'string' },
      since: { type: 'string', default: '1h' },
      limit: { type: 'string', default: '500' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  if (!values.jaeger) throw new Error('--jaeger URL is required');
  if (!URL.canParse(values.jaeger) || !/^https?:$/.test(new URL(values.jaeger).protocol)) throw new Error(`--jaeger must be an http(s) URL; got ${values.jaeger}`);
  if (!values.service) throw new Error('--service NAME is required');
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new Error(`--limit must be a whole number from 1 to 100000; got ${values.limit}`);
  return { jaeger: values.jaeger, service: values.service, since: values.since, sinceMs: parseDuration(values.since), limit, json: values.json };
}

/** `30s`, `15m`, `1h`, `2d` in milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)(s|m|h|d)$/.exec(text.trim());
  if (!match) throw new Error(`--since must look like 30s, 15m, 1h or 2d; got ${text}`);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}
