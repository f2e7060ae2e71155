import { parseArgs } from 'node:util';
import { describeViolation, describeViolations } from '../../audit/internal/describe-violation.js';
import type { AuditReport } from '../../audit/types.js';
import { AuditTally } from './audit-tally.js';
import { JaegerAnswerError, JaegerUnreachableError } from './jaeger-client.js';
import { searchTraces, type Coverage } from './trace-search.js';

/** Exit codes of `isotrace audit`. */
export const EXIT = { clean: 0, violations: 1, usage: 2, notAudited: 3 } as const;

type ExitCode = (typeof EXIT)[keyof typeof EXIT];

const DEFAULT_LIMIT = 10_000;
const MAX_LIMIT = 100_000;
const MAX_SINCE_DAYS = 3650;
// Spans from hosts whose clocks run a little ahead still fall in the window.
const CLOCK_SKEW_MS = 60_000;

export const AUDIT_USAGE = `Usage: isotrace audit --jaeger URL --service NAME [--since 1h] [--limit ${DEFAULT_LIMIT}] [--json]

Fetches every trace of the service that started within --since from Jaeger's
query API, page by page, and audits it: every span must carry the request
id, tenant and user of its nearest request span, a span that carries identity
must have a request span above it, and no span may carry a run-time
isolation violation.

  --jaeger URL     Jaeger query base URL, e.g. http://127.0.0.1:16686
  --service NAME   service.name whose traces to audit
  --since DUR      how far back: 30s, 15m, 1h, 2d (default 1h, at most ${MAX_SINCE_DAYS}d)
  --limit N        most traces to audit (default ${DEFAULT_LIMIT}, at most ${MAX_LIMIT}); more is
                   reported as an incomplete audit, never cut silently
  --json           print a machine-readable report
  -h, --help       print this help

Exit status: 0 clean, 1 violations found, 2 usage or connection error,
3 nothing audited or audit incomplete (no traces, a wrong answer, over --limit).`;

interface Output {
  out(line: string): void;
  err(line: string): void;
}

interface AuditOptions {
  jaeger: string;
  service: string;
  sinceMs: number;
  since: string;
  limit: number;
  json: boolean;
}

/** The verdict: exit code, a status word for --json, whether the whole window was searched, and what falls short of a pass. */
interface Outcome {
  code: ExitCode;
  status: 'clean' | 'violations' | 'nothing-audited' | 'incomplete';
  complete: boolean;
  problem?: string | undefined;
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
  const tally = new AuditTally();
  const { coverage, failure } = await search(options, tally);
  const report = tally.report();
  if (failure !== undefined && report.traces === 0) {
    io.err(`isotrace audit: ${failure.message}`);
    return failure.code;
  }
  const outcome = outcomeOf(report, coverage, failure?.code, options);
  if (options.json) printJson(report, outcome, options, io);
  else printSummary(report, outcome, options, io);
  if (outcome.problem !== undefined) io.err(`isotrace audit: ${outcome.status === 'nothing-audited' ? 'nothing audited' : 'audit incomplete'}: ${outcome.problem}`);
  return outcome.code;
}

/** Pages through the window into the tally; a Jaeger failure ends the search with what was audited so far. */
async function search(options: AuditOptions, tally: AuditTally): Promise<{ coverage: Coverage; failure?: { code: ExitCode; message: string } }> {
  const now = Date.now();
  try {
    const coverage = await searchTraces(
      { jaeger: options.jaeger, service: options.service, startMin: now - options.sinceMs, startMax: now + CLOCK_SKEW_MS, limit: options.limit },
      (traceId, spans) => tally.add(traceId, spans),
    );
    return { coverage };
  } catch (error) {
    const code = error instanceof JaegerUnreachableError ? EXIT.usage : error instanceof JaegerAnswerError ? EXIT.notAudited : undefined;
    if (code === undefined) throw error;
    return { coverage: { complete: false, reason: (error as Error).message }, failure: { code, message: (error as Error).message } };
  }
}

/** Violations found always exit 1; otherwise anything short of a complete, non-empty audit is never 0. */
function outcomeOf(report: AuditReport, coverage: Coverage, failureCode: ExitCode | undefined, options: AuditOptions): Outcome {
  const { complete } = coverage;
  const problem = coverage.complete ? undefined : coverage.reason;
  if (!report.ok) return { code: EXIT.violations, status: 'violations', complete, problem };
  if (problem !== undefined) return { code: failureCode ?? EXIT.notAudited, status: 'incomplete', complete, problem };
  if (report.traces === 0) {
    return {
      code: EXIT.notAudited,
      status: 'nothing-audited',
      complete,
      problem: `Jaeger has no traces of service '${options.service}' that started in the last ${options.since} (is the service name right? do its spans reach Jaeger?)`,
    };
  }
  return { code: EXIT.clean, status: 'clean', complete };
}

function printJson(report: AuditReport, outcome: Outcome, options: AuditOptions, io: Output): void {
  const link = traceLink(options);
  io.out(
    JSON.stringify(
      {
        jaeger: options.jaeger,
        service: options.service,
        since: options.since,
        ...report,
        ok: outcome.code === EXIT.clean,
        status: outcome.status,
        complete: outcome.complete,
        ...(outcome.problem === undefined ? {} : { problem: outcome.problem }),
        violations: report.violations.map((v) => ({ ...v, message: describeViolation(v), link: link(v.traceId) })),
      },
      null,
      2,
    ),
  );
}

function printSummary(report: AuditReport, outcome: Outcome, options: AuditOptions, io: Output): void {
  const link = traceLink(options);
  io.out(`isotrace audit: service ${options.service}, last ${options.since}`);
  io.out(`  traces ${report.traces}  requests ${report.requests}  tool spans ${report.toolSpans}  spans ${report.spans}`);
  if (outcome.status === 'nothing-audited') io.out('  NOTHING AUDITED: no traces; this is not a pass');
  else if (outcome.problem !== undefined) io.out(`  INCOMPLETE: ${outcome.problem}`);
  if (report.ok) {
    if (outcome.status === 'clean') io.out('  violations 0: no span crossed between requests');
    else io.out('  violations 0 in what was audited');
    return;
  }
  const byCheck = Object.entries(report.violationsByCheck).map(([check, count]) => `${check} ${count}`).join(', ');
  io.out(`  violations ${report.violations.length} (${byCheck})`);
  for (const found of describeViolations(report.violations)) {
    io.out(`  VIOLATION ${found.checks.join(', ')}: ${found.text}  ${link(found.traceId)}`);
  }
}

function traceLink(options: AuditOptions): (traceId: string) => string {
  return (traceId) => `${options.jaeger.replace(/\/$/, '')}/trace/${traceId}`;
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
      limit: { type: 'string', default: String(DEFAULT_LIMIT) },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  if (!values.jaeger) throw new Error('--jaeger URL is required');
  if (!URL.canParse(values.jaeger) || !/^https?:$/.test(new URL(values.jaeger).protocol)) throw new Error(`--jaeger must be an http(s) URL; got ${values.jaeger}`);
  if (!values.service) throw new Error('--service NAME is required');
  const limit = Number(values.limit);
  if (!/^\d+$/.test(values.limit.trim()) || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new Error(`--limit must be a whole number from 1 to ${MAX_LIMIT}; got ${values.limit}`);
  }
  return { jaeger: values.jaeger, service: values.service, since: values.since, sinceMs: parseDuration(values.since), limit, json: values.json };
}

/** `30s`, `15m`, `1h`, `2d` in milliseconds: more than zero, at most MAX_SINCE_DAYS. */
export function parseDuration(text: string): number {
  const match = /^(\d+)(s|m|h|d)$/.exec(text.trim());
  if (!match) throw new Error(`--since must look like 30s, 15m, 1h or 2d; got ${text}`);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 's' | 'm' | 'h' | 'd'];
  const ms = Number(match[1]) * unit;
  if (!(ms > 0 && ms <= MAX_SINCE_DAYS * 86_400_000)) throw new Error(`--since must be more than 0 and at most ${MAX_SINCE_DAYS}d; got ${text}`);
  return ms;
}
