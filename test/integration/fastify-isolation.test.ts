/**
 * Fastify isolation: 200 concurrent requests over 20 tenants (a user each)
 * to a real Fastify app with the isotrace plugin, a prefixed route with
 * params and a JSON body. Every handler awaits seeded random delays and
 * checks after each one that it still sees its own request context, request
 * values and SharedState; the exported spans pass expectNoCrossRequestLeakage.
 *
 * The negative control plants the classic leak — a module-level "current
 * request" read after an await — and expectNoCrossRequestLeakage must fail:
 * proof that the checks can fail.
 *
 * Replay a failure with ISOTRACE_TEST_SEED=<printed seed>.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { SpanKind, trace } from '@opentelemetry/api';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { getRequestContext, getSharedState, type RequestContext } from 'isotrace';
import { isotracePlugin } from 'isotrace/fastify';
import { expectNoCrossRequestLeakage } from 'isotrace/testing';
import { rawRequest, waitFor } from '../helpers/http.js';
import { createRandom, delay, testSeed, type Random } from '../helpers/random.js';
import { useTestTracing } from '../helpers/tracing.js';
import { auth, identify, listenFastify, type ListeningApp } from '../unit/fastify/fastify-test-helpers.js';

const REQUESTS = 200;
const TENANTS = 20;
const STEPS = 4;

const kit = useTestTracing();
const tracer = trace.getTracer('fastify-isolation');
let seed: number;
let server: ListeningApp;

interface Turn {
  secret: string;
  delaysMs: number[];
}

interface Outcome {
  requestId: string;
  tenantId: string;
  userId: string;
  /** What the handler saw that was not its own request's. */
  mismatches: string[];
}

interface Plan extends Turn {
  tenantId: string;
  userId: string;
}

type TurnRequest = FastifyRequest<{ Params: { tenant: string }; Body: Turn }>;

function drawPlans(random: Random): Plan[] {
  return Array.from({ length: REQUESTS }, (_, index) => ({
    tenantId: `tenant-${index % TENANTS}`,
    userId: `user-${index}`,
    secret: `secret-${index}-${random.int(0, 1e9)}`,
    delaysMs: Array.from({ length: STEPS }, () => random.int(0, 15)),
  }));
}

/** A span that names the request it was made for: parented under another request, it fails the audit. */
function stepSpan(name: string, ctx: RequestContext): void {
  tracer.startSpan(name, { attributes: { 'isotrace.request_id': ctx.requestId, 'isotrace.tenant_id': ctx.tenantId, 'user.id': ctx.userId } }).end();
}

/** The correct handler: whatever it awaits, the context it finds is its own. */
async function turn(request: TurnRequest): Promise<Outcome> {
  const own = request.isotrace;
  const { secret, delaysMs } = request.body;
  const mismatches: string[] = [];
  if (own.tenantId !== request.params.tenant) mismatches.push(`identified as ${own.tenantId}, route says ${request.params.tenant}`);
  own.set('secret', secret);
  await getSharedState().set('secret', secret);
  for (const [step, ms] of delaysMs.entries()) {
    await delay(ms);
    const seen = getRequestContext();
    if (seen !== own) mismatches.push(`step ${step}: context of ${seen.tenantId}/${seen.userId}`);
    if (seen.get('secret') !== secret) mismatches.push(`step ${step}: request value ${String(seen.get('secret'))}`);
    const stored = await getSharedState().get('secret');
    if (stored !== secret) mismatches.push(`step ${step}: SharedState ${JSON.stringify(stored)}`);
    stepSpan(`step ${step}`, seen);
  }
  return { requestId: own.requestId, tenantId: own.tenantId, userId: own.userId, mismatches };
}

// The planted leak of the negative control: the request being served, kept where every request can see it.
let currentRequest: FastifyRequest | undefined;

/** The leaky handler: after an await, "the current request" is whichever started last. */
async function leakyTurn(request: TurnRequest): Promise<Outcome> {
  currentRequest = request;
  const { secret, delaysMs } = request.body;
  await getSharedState().set('secret', secret);
  const mismatches: string[] = [];
  for (const [step, ms] of delaysMs.entries()) {
    await delay(ms);
    const ctx = currentRequest.isotrace;
    if (ctx !== request.isotrace) mismatches.push(`step ${step}: served as ${ctx.tenantId}/${ctx.userId}`);
    await ctx.sharedState.get('secret');
    stepSpan(`step ${step}`, ctx);
  }
  return { requestId: request.isotrace.requestId, tenantId: request.isotrace.tenantId, userId: request.isotrace.userId, mismatches };
}

async function buildApp(): Promise<FastifyInstance> {
  const app = Fastify();
  await app.register(isotracePlugin, { identify });
  await app.register(
    async (api) => {
      api.post<{ Params: { tenant: string }; Body: Turn }>('/tenants/:tenant/turn', turn);
      api.post<{ Params: { tenant: string }; Body: Turn }>('/tenants/:tenant/leaky-turn', leakyTurn);
    },
    { prefix: '/api' },
  );
  return app;
}

async function runAll(plans: readonly Plan[], route: 'turn' | 'leaky-turn'): Promise<Outcome[]> {
  const responses = await Promise.all(
    plans.map((plan) =>
      rawRequest(server.port, {
        method: 'POST',
        path: `/api/tenants/${plan.tenantId}/${route}`,
        headers: [...auth(plan.tenantId, plan.userId), ['content-type', 'application/json']],
        body: JSON.stringify({ secret: plan.secret, delaysMs: plan.delaysMs }),
      }),
    ),
  );
  for (const [i, response] of responses.entries()) expect(response.status, `request ${i} (seed ${seed}): ${response.body}`).toBe(200);
  // Each SERVER span ends once the server saw its response finish.
  await waitFor(() => kit.spans().filter((span) => span.kind === SpanKind.SERVER).length >= plans.length, `${plans.length} SERVER spans`);
  return responses.map((response) => response.json<Outcome>());
}

beforeAll(async () => {
  seed = testSeed();
  server = await listenFastify(await buildApp());
});

afterAll(async () => {
  await server?.close();
});

describe('Fastify plugin isolation', () => {
  it(`keeps ${REQUESTS} concurrent requests over ${TENANTS} tenants apart across random awaits`, async () => {
    const plans = drawPlans(createRandom(seed));
    const outcomes = await runAll(plans, 'turn');
    outcomes.forEach((outcome, i) => {
      expect(outcome, `request ${i} (seed ${seed})`).toMatchObject({ tenantId: plans[i]!.tenantId, userId: plans[i]!.userId, mismatches: [] });
    });
    expect(new Set(outcomes.map((outcome) => outcome.requestId)).size).toBe(REQUESTS);
    const spans = kit.spans();
    expect(spans.filter((span) => span.name.startsWith('step ')).length).toBe(REQUESTS * STEPS);
    expect(spans.filter((span) => span.kind === SpanKind.SERVER).every((span) => span.name === 'POST /api/tenants/:tenant/turn')).toBe(true);
    const report = expectNoCrossRequestLeakage(spans);
    expect(report.spans).toBeGreaterThanOrEqual(REQUESTS * (STEPS + 1));
  });

  it('negative control: a module-level current request read after an await is caught', async () => {
    const plans = drawPlans(createRandom(seed));
    const outcomes = await runAll(plans, 'leaky-turn');
    const crossed = outcomes.filter((outcome) => outcome.mismatches.length > 0).length;
    expect(crossed, `requests served as another request (seed ${seed})`).toBeGreaterThan(0);
    expect(() => expectNoCrossRequestLeakage(kit.spans())).toThrow(/cross-request leak|isolation violation/);
  });
});
