import { context } from '@opentelemetry/api';
import { Runner, type RunConfig } from '@openai/agents-core';
import { requestContextOf } from '../../context/internal/request-scope.js';
import { RequestContextMissingError } from '../../errors/errors.js';
import { reportOnce } from '../../tracing/internal/report.js';
import { getRuntime } from '../../tracing/internal/runtime.js';
import type { IsotraceRunnerOptions } from '../types.js';
import { AgentRun, agentRunOf, withAgentRun, type AgentLike } from './agent-run.js';
import { isAuditedTool } from './audited-tools.js';

/** Marks a runner isotraceRunner() instrumented: doing it twice must not start every span twice. */
const INSTRUMENTED = Symbol('isotrace.openai_agents.runner');

type RunMethod = (agent: unknown, input: unknown, options?: { stream?: unknown; conversationId?: unknown }) => Promise<unknown>;

/** What isotraceRunner() uses of a Runner: `run()` and its lifecycle events. */
interface RunnerLike {
  run: RunMethod;
  on(event: string, listener: (...args: never[]) => void): unknown;
}

/**
 * A Runner whose every run is traced as the agents it runs: one
 * `invoke_agent {agent name}` span (GenAI conventions, INTERNAL) per agent
 * of the run, children of the span active where `run()` was called (the
 * request span); a handoff is a `handoff {to agent}` span inside the agent
 * that hands off, and the next agent's span links to it. The spans carry
 * `gen_ai.operation.name=invoke_agent`, `gen_ai.agent.name`,
 * `gen_ai.provider.name` (`options.providerName`, default `openai`),
 * `gen_ai.agent.description` (the agent's `handoffDescription`),
 * `gen_ai.request.model` when the agent names its model, and
 * `gen_ai.conversation.id` from the run's `conversationId` option, else the
 * request's (never made up). Tool calls of isotraceTools() tools are children
 * of their agent's span and carry `gen_ai.agent.name`; a local tool that is
 * not wrapped is marked on the agent span (event `isotrace.unaudited_tool`)
 * and reported once. A failed run records its error on the agent span;
 * a streamed run's spans end when the stream completes.
 *
 * Takes a Runner config (a new Runner is made) or a Runner, which is
 * instrumented in place (once) and returned. Make it once, at module level,
 * and call `runner.run(agent, input, options)` inside requests: a run outside
 * any request rejects with RequestContextMissingError before the agent runs.
 * Throws TypeError for a bad option. The SDK's own tracing is not needed
 * (it may stay disabled) and is not changed.
 *
 * ```ts
 * const runner = isotraceRunner({ workflowName: 'support' });
 * const agent = new Agent({ name: 'triage', tools: isotraceTools([lookupOrder]), handoffs: [refunds] });
 * // per request:
 * await withRequestContext({ tenantId, userId, conversationId }, () => runner.run(agent, message));
 * ```
 */
export function isotraceRunner(runnerOrConfig: Runner | Partial<RunConfig> = {}, options: IsotraceRunnerOptions = {}): Runner {
  checkOptions(options);
  if (typeof runnerOrConfig !== 'object' || runnerOrConfig === null) throw new TypeError('isotraceRunner(runnerOrConfig): expected a Runner or a Runner config object.');
  // Duck-typed: an app that loads the SDK both as ESM and CommonJS has two Runner classes.
  const runner = (isRunner(runnerOrConfig) ? runnerOrConfig : new Runner(runnerOrConfig)) as unknown as RunnerLike & Record<symbol, unknown>;
  if (runner[INSTRUMENTED]) return runner as unknown as Runner;
  const providerName = options.providerName ?? 'openai';
  const run = runner.run.bind(runner);
  Object.defineProperty(runner, 'run', { value: ((agent, input, runOptions) => runInRequest(run, providerName, agent, input, runOptions)) satisfies RunMethod, writable: true, configurable: true });
  listen(runner);
  Object.defineProperty(runner, INSTRUMENTED, { value: true });
  return runner as unknown as Runner;
}

/** One run: refused outside a request, else run with its AgentRun in the context the SDK carries through the run. */
async function runInRequest(run: RunMethod, providerName: string, agent: unknown, input: unknown, runOptions: Parameters<RunMethod>[2]): Promise<unknown> {
  const active = context.active();
  const owner = requestContextOf(active);
  if (!owner) throw new RequestContextMissingError('runner.run() of an isotraceRunner()');
  getRuntime('runner.run() of an isotraceRunner()');
  const conversationId = typeof runOptions?.conversationId === 'string' && runOptions.conversationId.length > 0 ? runOptions.conversationId : undefined;
  const agentRun = new AgentRun(owner, active, { providerName, conversationId });
  let result: unknown;
  try {
    result = await context.with(withAgentRun(active, agentRun), () => run(agent, input, runOptions));
  } catch (error) {
    agentRun.finish(error);
    throw error;
  }
  const streamed = result as { completed?: Promise<void>; error?: unknown } | null;
  if (streamed && typeof streamed.completed?.then === 'function') {
    // The run goes on while the caller consumes the stream; its end (or error) ends the spans.
    streamed.completed.then(
      () => agentRun.finish(streamed.error),
      (error: unknown) => agentRun.finish(error),
    );
  } else {
    agentRun.finish();
  }
  return result;
}

/** The lifecycle events that drive each run's spans. The SDK emits them in the run's own context, where its AgentRun is. */
function listen(runner: RunnerLike): void {
  runner.on('agent_start', (_runContext: unknown, agent: AgentLike) => onRun('agent_start', (run) => run.startAgent(agent)));
  runner.on('agent_handoff', (_runContext: unknown, from: AgentLike, to: AgentLike) => onRun('agent_handoff', (run) => run.handoff(from, to)));
  runner.on('agent_end', (_runContext: unknown, agent: AgentLike) => onRun('agent_end', (run) => run.endAgent(agent)));
  runner.on('agent_tool_start', (_runContext: unknown, agent: AgentLike, tool: { type?: unknown; name?: unknown }) =>
    onRun('agent_tool_start', (run) => run.toolStarting(agent, tool, isAuditedTool(tool))),
  );
}

/** Telemetry never throws into the run: a failure is reported once and the run goes on. */
function onRun(event: string, handle: (run: AgentRun) => void): void {
  try {
    const run = agentRunOf(context.active());
    if (run) handle(run);
  } catch (error) {
    reportOnce(`openai-agents-${event}`, `isotraceRunner() could not trace the Agents SDK event '${event}'.`, error);
  }
}

function isRunner(value: object): value is Runner {
  const candidate = value as Partial<RunnerLike>;
  return typeof candidate.run === 'function' && typeof candidate.on === 'function';
}

function checkOptions(options: IsotraceRunnerOptions): void {
  if (typeof options !== 'object' || options === null) throw new TypeError('isotraceRunner(runner, options): options must be an object { providerName? }.');
  const { providerName } = options;
  if (providerName !== undefined && (typeof providerName !== 'string' || providerName.length === 0)) throw new TypeError('isotraceRunner(): options.providerName must be a non-empty string.');
}
