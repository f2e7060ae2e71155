/**
 * The isolation suite: 2,000 concurrent requests across 20 tenants (5 users
 * each) await a seeded random mix of promises, timers, setImmediate,
 * queueMicrotask, an EventEmitter round trip, a stream pipeline, an async
 * generator and a callback-style pooled resource whose callbacks fire from a
 * shared dispatcher loop outside every request. Every step checks, from inside
 * the callback that resumed it, that it still sees its own request: context,
 * request values, SharedState and expanded variables. The exported spans must
 * pass expectNoCrossRequestLeakage.
 *
 * The negative control runs the same requests without bindToRequest on the
 * pooled callbacks and must see them lose their request: proof that the
 * checks can fail.
 *
 * Replay a failure with ISOTRACE_TEST_SEED=<printed seed>.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { EventEmitter, once } from 'node:events';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { trace, type Attributes } from '@opentelemetry/api';
import { bindToRequest, expandVariables, getFromContext, getSharedState, tryGetRequestContext, withRequestContext } from 'isotrace';
import { expectNoCrossRequestLeakage, setupTestTracing, type TestTracing } from 'isotrace/testing';
import { createRandom, delay, testSeed, type Random } from '../helpers/random.js';

const REQUESTS = 2000;
const TENANTS = 20;
const USERS_PER_TENANT = 5;
const STEP_KINDS = ['promise', 'setTimeout', 'setImmediate', 'queueMicrotask', 'eventEmitter', 'stream', 'asyncGenerator', 'pool'] as const;
type StepKind = (typeof STEP_KINDS)[number];

/** What one request must see at every step. */
interface Own {
  index: number;
  requestId: string;
  tenantId: string;
  userId: string;
  secret: string;
  stateKey: string;
}

/** One request's pre-drawn choices, so a seed replays the same run. */
interface Plan {
  tenantId: string;
  userId: string;
  startDelayMs: number;
  steps: Array<{ kind: StepKind; delayMs: number }>;
}

/** What a run observed. */
class Tally {
  checks = 0;
  missing = 0;
  crossed = 0;
  readonly stepsRun: Record<StepKind, number> = Object.fromEntries(STEP_KINDS.map((kind) => [kind, 0])) as Record<StepKind, number>;
  readonly mismatchesAt: Record<string, number> = {};
  readonly samples: string[] = [];
  requestsDone = 0;

  get mismatches(): number {
    return this.missing + this.crossed;
  }

  mismatch(kind: 'missing' | 'crossed', where: string, detail: string): void {
    this[kind]++;
    this.mismatchesAt[where] = (this.mismatchesAt[where] ?? 0) + 1;
    if (this.samples.length < 10) this.samples.push(`${where}: ${detail}`);
  }
}

/**
 * A callback-style connection pool: queries wait in a queue and a dispatcher
 * loop, started before any request, hands them to a fixed set of connections
 * (each pipelines what it is given) and invokes their callbacks on the next
 * tick. Callbacks therefore run in the loop's async context, not their
 * caller's — the way many driver pools behave.
 */
interface PoolJob {
  sql: string;
  callback: (error: Error | null, rows?: string[]) => void;
}

class CallbackPool {
  readonly #queue: PoolJob[] = [];
  readonly #connections: Array<{ id: number; inFlight: PoolJob[] }>;
  readonly #loop: NodeJS.Timeout;

  constructor(size: number) {
    this.#connections = Array.from({ length: size }, (_, id) => ({ id, inFlight: [] }));
    this.#loop = setInterval(() => this.#dispatch(), 1);
  }

  query(sql: string, callback: (error: Error | null, rows?: string[]) => void): void {
    this.#queue.push({ sql, callback });
  }

  close(): void {
    clearInterval(this.#loop);
  }

  #dispatch(): void {
    const answered = this.#connections.map((connection) => connection.inFlight.splice(0).map((job) => [job, connection.id] as const)).flat();
    this.#queue.splice(0).forEach((job, n) => this.#connections[n % this.#connections.length]!.inFlight.push(job));
    for (const [job, connectionId] of answered) job.callback(null, [`${job.sql} @conn${connectionId}`]);
  }
}

interface RunOptions {
  plans: readonly Plan[];
  bindPoolCallbacks: boolean;
  runId: string;
}

const tracer = trace.getTracer('isolation-suite');
const bus = new EventEmitter();
let pool: CallbackPool;
let kit: TestTracing;
let seed: number;
let plans: Plan[];

function drawPlans(random: Random): Plan[] {
  return Array.from({ length: REQUESTS }, (_, index) => {
    // Every request meets every kind at least once, in random order, plus a few repeats.
    const kinds = [...random.shuffle(STEP_KINDS), ...Array.from({ length: random.int(0, 2) }, () => random.pick(STEP_KINDS))];
    return {
      tenantId: `tenant-${index % TENANTS}`,
      userId: `user-${random.int(0, USERS_PER_TENANT - 1)}`,
      startDelayMs: random.int(0, 5),
      steps: random.shuffle(kinds).map((kind) => ({ kind, delayMs: random.int(0, 3) })),
    };
  });
}

function identityAttributes(own: Own): Attributes {
  // Explicit, from what the request knows it is: a span parented under another
  // request would then disagree with its request ancestor and fail the audit.
  return { 'isotrace.request_id': own.requestId, 'isotrace.tenant_id': own.tenantId, 'user.id': own.userId };
}

/**
 * Checks, synchronously where it is called, that the running code sees `own`'s
 * request; the SharedState read-back settles in the returned promise.
 */
function observe(own: Own, where: string, tally: Tally): Promise<void> {
  tally.checks++;
  const ctx = tryGetRequestContext();
  if (!ctx) {
    tally.mismatch('missing', where, `request ${own.index} saw no request context`);
    return Promise.resolve();
  }
  if (ctx.requestId !== own.requestId || ctx.tenantId !== own.tenantId || ctx.userId !== own.userId) {
    tally.mismatch('crossed', where, `request ${own.index} saw ${ctx.requestId}/${ctx.tenantId}/${ctx.userId}`);
  }
  const secret = getFromContext('secret');
  if (secret !== own.secret) tally.mismatch('crossed', where, `request ${own.index} saw secret ${String(secret)}`);
  const expanded = expandVariables('${TENANT_ID}/${REQUEST_ID}');
  if (expanded !== `${own.tenantId}/${own.requestId}`) tally.mismatch('crossed', where, `request ${own.index} expanded ${expanded}`);
  const state = getSharedState();
  if (state.scope.tenantId !== own.tenantId || state.scope.userId !== own.userId) {
    tally.mismatch('crossed', where, `request ${own.index} got SharedState of ${state.scope.tenantId}/${state.scope.userId}`);
  }
  return state.get(own.stateKey).then((value) => {
    if (value !== own.secret) tally.mismatch('crossed', where, `request ${own.index} read SharedState ${JSON.stringify(value)}`);
  });
}

/** Resolves once `check` (run inside a callback) has settled. */
function settleFrom(schedule: (run: () => void) => void, check: () => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => schedule(() => void check().then(resolve, reject)));
}

const STEPS: Record<StepKind, (own: Own, delayMs: number, tally: Tally, options: RunOptions) => Promise<void>> = {
  async promise(own, delayMs, tally) {
    await Promise.all([
      Promise.resolve().then(() => observe(own, 'promise.then', tally)),
      (async () => {
        await delay(delayMs);
        await observe(own, 'promise.async', tally);
      })(),
    ]);
  },

  async setTimeout(own, delayMs, tally) {
    await settleFrom((run) => setTimeout(run, delayMs), () => observe(own, 'setTimeout', tally));
  },

  async setImmediate(own, _delayMs, tally) {
    await settleFrom((run) => setImmediate(run), () => observe(own, 'setImmediate', tally));
  },

  async queueMicrotask(own, _delayMs, tally) {
    await settleFrom((run) => queueMicrotask(run), () => observe(own, 'queueMicrotask', tally));
  },

  async eventEmitter(own, _delayMs, tally) {
    const topic = `pong:${own.requestId}:${tally.checks}`;
    let inListener: Promise<void> | undefined;
    bus.once(topic, () => (inListener = observe(own, 'eventEmitter.listener', tally)));
    const reply = once(bus, topic);
    bus.emit('ping', topic);
    await reply;
    await inListener;
  },

  async stream(own, _delayMs, tally) {
    const checks: Array<Promise<void>> = [];
    await pipeline(
      Readable.from(['a', 'b']),
      new Transform({
        objectMode: true,
        transform(chunk: string, _encoding, callback) {
          checks.push(observe(own, 'stream.transform', tally));
          setImmediate(() => callback(null, chunk.toUpperCase()));
        },
      }),
      new Writable({
        objectMode: true,
        write(_chunk: string, _encoding, callback) {
          checks.push(observe(own, 'stream.write', tally));
          callback();
        },
      }),
    );
    await Promise.all(checks);
  },

  async asyncGenerator(own, delayMs, tally) {
    async function* pages(): AsyncGenerator<number> {
      for (let page = 0; page < 2; page++) {
        await delay(page === 0 ? delayMs : 0);
        await observe(own, 'asyncGenerator.body', tally);
        yield page;
      }
    }
    for await (const _page of pages()) await observe(own, 'asyncGenerator.consumer', tally);
  },

  async pool(own, _delayMs, tally, options) {
    await new Promise<void>((resolve, reject) => {
      const callback = (error: Error | null): void => {
        if (error) return reject(error);
        const span = tracer.startSpan('pool.callback', { attributes: identityAttributes(own) });
        observe(own, 'pool.callback', tally).then(resolve, reject);
        span.end();
      };
      pool.query(`select * from orders where request = '${own.requestId}'`, options.bindPoolCallbacks ? bindToRequest(callback) : callback);
    });
  },
};

async function runRequest(index: number, plan: Plan, tally: Tally, options: RunOptions): Promise<void> {
  const secret = `secret-${options.runId}-${index}`;
  await withRequestContext({ tenantId: plan.tenantId, userId: plan.userId, values: { secret }, name: `request ${index}` }, async (ctx) => {
    const own: Own = { index, requestId: ctx.requestId, tenantId: plan.tenantId, userId: plan.userId, secret, stateKey: `own:${ctx.requestId}` };
    await ctx.sharedState.set(own.stateKey, secret);
    await ctx.sharedState.update<number>(`requests:${options.runId}`, (n) => (n ?? 0) + 1);
    await delay(plan.startDelayMs);
    await observe(own, 'start', tally);
    for (const { kind, delayMs } of plan.steps) {
      await tracer.startActiveSpan(`step ${kind}`, { attributes: identityAttributes(own) }, async (span) => {
        try {
          await STEPS[kind](own, delayMs, tally, options);
        } finally {
          span.end();
        }
      });
      tally.stepsRun[kind]++;
      await observe(own, `after ${kind}`, tally);
    }
  });
  tally.requestsDone++;
}

async function run(options: RunOptions): Promise<Tally> {
  const tally = new Tally();
  await Promise.all(options.plans.map((plan, index) => runRequest(index, plan, tally, options)));
  return tally;
}

function plannedSteps(kind?: StepKind): number {
  return plans.reduce((sum, plan) => sum + plan.steps.filter((step) => kind === undefined || step.kind === kind).length, 0);
}

beforeAll(async () => {
  seed = testSeed();
  console.log(`isolation suite seed: ${seed} (replay with ISOTRACE_TEST_SEED=${seed})`);
  plans = drawPlans(createRandom(seed));
  kit = await setupTestTracing({ serviceName: 'isolation-suite' });
  // Both started outside every request: what they call back runs in no request's context.
  bus.setMaxListeners(0);
  bus.on('ping', (topic: string) => setImmediate(() => bus.emit(topic)));
  pool = new CallbackPool(8);
});

afterAll(async () => {
  pool?.close();
  bus.removeAllListeners();
  await kit?.shutdown();
});

describe('isolation under 2,000 concurrent requests', () => {
  it('every step of every request sees only its own request, and the spans pass the leak audit', async () => {
    kit.reset();
    const tally = await run({ plans, bindPoolCallbacks: true, runId: 'bound' });
    const where = `seed ${seed}; samples:\n${tally.samples.join('\n')}`;

    expect(tally.requestsDone).toBe(REQUESTS);
    for (const kind of STEP_KINDS) expect(tally.stepsRun[kind], `${kind} steps run`).toBe(plannedSteps(kind));
    expect(tally.checks, where).toBeGreaterThan(plannedSteps() * 2);
    expect({ missing: tally.missing, crossed: tally.crossed, at: tally.mismatchesAt }, where).toEqual({ missing: 0, crossed: 0, at: {} });

    const spans = kit.spans();
    const report = expectNoCrossRequestLeakage(spans);
    expect(report.requests).toBe(REQUESTS);
    expect(report.traces).toBe(REQUESTS);
    const stepSpans = spans.filter((span) => span.name.startsWith('step '));
    const poolSpans = spans.filter((span) => span.name === 'pool.callback');
    expect(stepSpans).toHaveLength(plannedSteps());
    expect(poolSpans).toHaveLength(plannedSteps('pool'));
    // No step span lost its parent (the audit compares only spans with a request ancestor).
    const orphans = [...stepSpans, ...poolSpans].filter((span) => span.parentSpanContext === undefined);
    expect(orphans).toHaveLength(0);

    // SharedState counted each scope's requests exactly.
    const perScope = new Map<string, number>();
    for (const plan of plans) perScope.set(`${plan.tenantId}\n${plan.userId}`, (perScope.get(`${plan.tenantId}\n${plan.userId}`) ?? 0) + 1);
    for (const [scope, expected] of perScope) {
      const [tenantId, userId] = scope.split('\n') as [string, string];
      const counted = await withRequestContext({ tenantId, userId }, () => getSharedState().get('requests:bound'));
      expect(counted, `${tenantId}/${userId}`).toBe(expected);
    }
    console.log(`isolation suite: ${REQUESTS} requests, ${plannedSteps()} steps, ${tally.checks} checks, ${spans.length} spans, 0 mismatches`);
  });

  it('negative control: without bindToRequest the pooled callbacks lose their request, and the checks see it', async () => {
    kit.reset();
    const tally = await run({ plans, bindPoolCallbacks: false, runId: 'unbound' });
    console.log(
      `negative control (seed ${seed}): ${tally.mismatches} mismatches (${tally.missing} missing context, ${tally.crossed} crossed) in ${tally.checks} checks; at ${JSON.stringify(tally.mismatchesAt)}`,
    );

    expect(tally.requestsDone).toBe(REQUESTS);
    expect(tally.stepsRun.pool).toBe(plannedSteps('pool'));
    expect(tally.mismatches).toBeGreaterThan(0);
    // The loss is exactly where the binding was removed: every pooled callback, nowhere else.
    expect(tally.mismatchesAt).toEqual({ 'pool.callback': plannedSteps('pool') });
  });
});
