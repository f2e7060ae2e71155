import { context, type ContextManager, type Counter, type Tracer } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { requestContextOf } from '../../context/internal/active-request.js';
import { IsotraceSetupError, TracingNotStartedError } from '../../errors/errors.js';
import type { SharedStateStore, WorkerStoreRecipe } from '../../shared-state/types.js';
import type { CallbackAuditSettings } from '../../audit/internal/callback-audit.js';
import type { TestKitHandle } from '../../testing/internal/test-tracing.js';
import type { ForwardingProcessor } from '../../workers/internal/worker-tracing.js';
import { ISOTRACE_VERSION } from '../../version.js';
import type { PropagationTarget, RedactInfo } from '../types.js';
import type { OutboundInstrumentations } from './isotrace-parts.js';
import type { RequestsInFlight } from './requests-in-flight.js';

/** The settings of a running isotrace, shared by every request of the process. */
export interface Runtime {
  readonly serviceName: string;
  readonly tracer: Tracer;
  readonly store: SharedStateStore;
  readonly audit: 'record' | 'throw';
  readonly propagateTo: readonly PropagationTarget[];
  readonly recordToolArguments: boolean;
  readonly redact: ((value: unknown, info: RedactInfo) => unknown) | undefined;
  /** `isotrace.isolation.violations`, labelled by `isotrace.audit.check`. */
  readonly violations: Counter;
  /** The process's resource (service.name, host, process), given to spans forwarded from worker threads. */
  readonly resource: Resource;
  /** Sends spans finished elsewhere (worker threads) through this process's export pipeline. */
  exportSpans(spans: readonly ReadableSpan[]): void;
  /** Settings a worker thread needs to trace like this process. */
  readonly workerSettings: WorkerSettings;
  /** The requests running under this runtime (absent in worker threads, which own nothing to release). */
  readonly requests?: RequestsInFlight;
  /** Releases what this runtime owns (its own MemoryStore) once its requests in flight have finished; called when a new startTracing() replaces it. */
  retire?(): void;
}

/** What a worker thread inherits from the process that submits its tasks (structured-clone safe). */
export interface WorkerSettings {
  serviceName: string;
  audit: 'record' | 'throw';
  /** False when the parent has a redact hook: functions cannot cross threads, so raw values must not be recorded there. */
  recordToolArguments: boolean;
  /** How workers open the SharedState store themselves; absent: through the submitting thread. */
  store?: WorkerStoreRecipe;
}

/**
 * isotrace's one process-wide handle (STYLE rule 2): everything isotrace keeps
 * beyond a request, in one object on `globalThis` under a `Symbol.for` key, so
 * every copy of the package loaded in the process (two versions in
 * node_modules, a bundled copy) shares the same running isotrace, as copies of
 * @opentelemetry/api share their globals. Each thread has its own.
 *
 * Its shape is a contract between copies: compatible versions (same major;
 * same minor below 1.0) may only add optional members.
 */
export interface ProcessState {
  /** The isotrace version that created this state; a copy of an incompatible version refuses to use it. */
  readonly version: string;
  /** The running isotrace, or the one shut down last (its requests are served without telemetry). */
  runtime: Runtime | undefined;
  /** Whether `runtime` was shut down: it keeps serving requests, without telemetry, until a new start replaces it. */
  stopped: boolean;
  /** Which problems were reported since the runtime started: each kind once per run, never per call. */
  reported: Set<string>;
  /**
   * The outbound HTTP/undici instrumentations, made once: a second
   * HttpInstrumentation could never patch node:http again (the require hook
   * fires once per module), so a restart re-enables these. Not reset with the runtime.
   */
  httpInstrumentations?: OutboundInstrumentations;
  /** The context manager startTracing() registered: kept after shutdown (requests still run in their context) and reused by a restart. */
  contextManager?: ContextManager;
  /** In a worker thread: its tracing, set up once by the first task. */
  workerTracing?: Promise<ForwardingProcessor | undefined>;
  /** The test kit running in this process, replaced by the next setupTestTracing(). */
  testKit?: TestKitHandle;
  /** The callback-owner check while it runs: its settings, and what puts the patched listener methods back. */
  callbackAudit?: { readonly settings: CallbackAuditSettings; readonly unpatch: () => void };
}

const STATE_KEY = Symbol.for('isotrace.process_state');
/** This copy's version; an unknown one (no package.json found) is compatible only with itself. */
const OWN_VERSION = ISOTRACE_VERSION ?? '0.0.0-unknown';

/**
 * The process's isotrace state, created by the first copy that needs it.
 * Throws IsotraceSetupError, naming both versions, when a copy of an
 * incompatible isotrace version created it: two such copies would read each
 * other's requests wrongly, so neither half-works.
 */
export function processState(): ProcessState {
  const slot = globalThis as { [STATE_KEY]?: ProcessState };
  const state = (slot[STATE_KEY] ??= { version: OWN_VERSION, runtime: undefined, stopped: false, reported: new Set() });
  if (state.version !== OWN_VERSION && !compatibleVersions(state.version, OWN_VERSION)) throw versionConflict(state.version);
  return state;
}

/**
 * Whether two isotrace versions may share a process: the same major version
 * (below 1.0, the same minor too), and no differing pre-release.
 */
export function compatibleVersions(a: string, b: string): boolean {
  if (a === b) return true;
  const [pa, pb] = [parseVersion(a), parseVersion(b)];
  if (!pa || !pb || pa.prerelease || pb.prerelease) return false;
  if (pa.major !== pb.major) return false;
  return pa.major !== 0 || pa.minor === pb.minor;
}

function parseVersion(version: string): { major: number; minor: number; prerelease: boolean } | undefined {
  const match = /^(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?(\+.*)?$/.exec(version);
  return match ? { major: Number(match[1]), minor: Number(match[2]), prerelease: match[4] !== undefined } : undefined;
}

function versionConflict(registered: string): IsotraceSetupError {
  return new IsotraceSetupError(
    `Two incompatible copies of isotrace are loaded in this process: isotrace ${registered} is already in use and this copy is isotrace ${OWN_VERSION} ` +
      `(loaded from ${import.meta.url}). They cannot share request contexts. Install one version (\`npm ls isotrace\` shows both; dedupe them or align the versions your dependencies ask for).`,
    ['isotrace-version'],
  );
}

/**
 * The runtime for code running now: the one the active request was started
 * under (a request keeps its runtime across a shutdown and restart), else the
 * registered one; throws TracingNotStartedError naming the caller when isotrace
 * was never started, and IsotraceSetupError on an incompatible copy.
 */
export function getRuntime(what: string): Runtime {
  const runtime = tryGetRuntime();
  if (!runtime) throw new TracingNotStartedError(what);
  return runtime;
}

/** Like getRuntime(), but undefined when isotrace was never started. */
export function tryGetRuntime(): Runtime | undefined {
  const state = processState();
  return requestContextOf(context.active())?.runtime ?? state.runtime;
}

/** The registered runtime, whatever request is active: the one a new start replaces. */
export function registeredRuntime(): Runtime | undefined {
  return processState().runtime;
}

/** The runtime only while isotrace runs: undefined before startTracing() and after shutdown(). */
export function runningRuntime(): Runtime | undefined {
  const state = processState();
  return state.stopped ? undefined : state.runtime;
}

/** Makes `runtime` the running one; problems are reported afresh for it. */
export function setRuntime(runtime: Runtime): void {
  const state = processState();
  state.runtime = runtime;
  state.stopped = false;
  state.reported = new Set();
}

/** Marks `runtime` shut down, if it is still the registered one: it stays in place for the requests that still use it. */
export function stopRuntime(runtime: Runtime): void {
  const state = processState();
  if (state.runtime === runtime) state.stopped = true;
}
