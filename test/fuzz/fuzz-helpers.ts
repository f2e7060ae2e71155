/**
 * Shared pieces of the property-based (fast-check) tests: a replayable seed,
 * a watch on uncaught exceptions and unhandled rejections, gc() for heap
 * checks, a hang detector and hostile-string arbitraries.
 *
 * fast-check prints the seed (and the shrunk counterexample) of a failing
 * property; FUZZ_SEED=<seed> (or ISOTRACE_TEST_SEED) replays it.
 */
import { channel as diagnosticsChannel } from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import fc from 'fast-check';
import type { Identity } from 'isotrace/http';

/** The seed of this run: FUZZ_SEED or ISOTRACE_TEST_SEED when set, else a fresh one (printed). */
export function fuzzSeed(file: string): number {
  const fromEnv = process.env.FUZZ_SEED ?? process.env.ISOTRACE_TEST_SEED;
  const seed = fromEnv !== undefined && fromEnv !== '' ? Number(fromEnv) : Math.floor(Math.random() * 2 ** 31);
  if (!Number.isInteger(seed)) throw new TypeError(`FUZZ_SEED must be an integer; got ${JSON.stringify(fromEnv)}.`);
  console.log(`${file}: fast-check seed ${seed} (replay with FUZZ_SEED=${seed})`);
  return seed;
}

/** Records every uncaught exception and unhandled rejection while installed. */
export interface CrashWatch {
  readonly crashes: readonly string[];
  uninstall(): void;
}

export function watchForCrashes(): CrashWatch {
  const crashes: string[] = [];
  const onException = (error: unknown): void => {
    crashes.push(`uncaughtException: ${describe(error)}`);
  };
  const onRejection = (reason: unknown): void => {
    crashes.push(`unhandledRejection: ${describe(reason)}`);
  };
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return {
    crashes,
    uninstall: () => {
      process.off('uncaughtException', onException);
      process.off('unhandledRejection', onRejection);
    },
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ''}` : String(error);
}


/** A short identifier an app's auth could hand out. */
export const token = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-_'), minLength: 1, maxLength: 10 });

/** Characters that can appear in an HTTP header value sent on the wire (no CR/LF: those would change the request's framing, not its headers). */
const headerChar = fc.oneof(
  { weight: 12, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 4, arbitrary: fc.constantFrom(' ', '\t', ',', ';', '=', '%', '"', '\\') },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.constantFrom('\u00e9', '\u00ff', '\u0080', '\u2028', '\ufeff', '\u{1f600}') },
);

/** Header-value text of printable and non-ASCII characters (node:http accepts these). */
export function headerText(maxLength: number): fc.Arbitrary<string> {
  return fc.string({ unit: headerChar, maxLength });
}

/** Header-value text that also holds a raw control character (node:http refuses these with 400 before any handler). */
export const controlText = fc
  .tuple(headerText(10), fc.integer({ min: 0, max: 0x1f }).filter((c) => c !== 0x0a && c !== 0x0d), headerText(10))
  .map(([before, code, after]) => `${before}${String.fromCharCode(code)}${after}`);

/** A string of `min`..`max` repetitions of `unit` (huge inputs without generating each character). */
export function repeated(unit: string, min: number, max: number): fc.Arbitrary<string> {
  return fc.integer({ min, max }).map((n) => unit.repeat(n));
}

/** A request value identifyFromBearer() sets: it must never leave the process in baggage. */
export const SESSION_MARKER = 'SESSION#VALUE#';

/** The app's auth in these tests: `authorization: Bearer <tenant>:<user>`, the only source of identity (plus a request value). */
export function identifyFromBearer(req: IncomingMessage): Identity | undefined {
  const match = /^Bearer ([\w-]+):([\w-]+)$/.exec(req.headers.authorization ?? '');
  return match ? { tenantId: match[1]!, userId: match[2]!, values: { session: `${SESSION_MARKER}${match[1]!}` } } : undefined;
}

/** Stands in for an mTLS check: the mesh sidecar marks internal peers. */
export function trustMeshPeer(req: IncomingMessage): boolean {
  return req.headers['x-mesh-peer'] === 'verified';
}

/**
 * The headers an outbound fetch to `url` would carry, without a network round
 * trip: the request undici would dispatch is published on its diagnostics
 * channel, so the real undici instrumentation opens the CLIENT span, runs
 * isotrace's destination hook and injects through `addHeader`.
 */
export function downstreamHeaders(url: string): Record<string, string> {
  const { origin, pathname, search } = new URL(url);
  const headers: Record<string, string> = {};
  const request = {
    origin,
    path: pathname + search,
    method: 'GET',
    headers: [] as string[],
    addHeader(key: string, value: string) {
      headers[key] = value;
      return request;
    },
  };
  diagnosticsChannel('undici:request:create').publish({ request });
  diagnosticsChannel('undici:request:trailers').publish({ request, trailers: [] });
  return headers;
}

/** The entries of a baggage header isotrace wrote (well-formed), percent-decoded. */
export function baggageEntries(header: string | undefined): Map<string, string> {
  const entries = new Map<string, string>();
  if (!header) return entries;
  for (const member of header.split(',')) {
    const pair = member.split(';')[0]!;
    const eq = pair.indexOf('=');
    entries.set(decodeURIComponent(pair.slice(0, eq).trim()), decodeURIComponent(pair.slice(eq + 1).trim()));
  }
  return entries;
}

export { exposeGc, heapAfterGc, settles } from '../helpers/guards.ts';
