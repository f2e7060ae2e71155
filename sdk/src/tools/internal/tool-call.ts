import { auditOwner } from '../../audit/internal/runtime-audit.js';
import type { RequestContextImpl } from '../../context/internal/request-context.js';
import type { RequestContext } from '../../context/types.js';
import { emitAs } from '../../events/internal/emit.js';
import type { ProgressEvent } from '../../events/types.js';
import type { ToolCall } from '../types.js';

/** The ToolCall a tool gets: its owner read from the tool system, never from the ambient context. */
export class ToolCallImpl implements ToolCall {
  readonly callId: string;
  readonly #owner: RequestContextImpl;
  #signal: AbortSignal | undefined;

  constructor(callId: string, owner: RequestContextImpl, signal: AbortSignal | undefined) {
    this.callId = callId;
    this.#owner = owner;
    this.#signal = signal;
  }

  // Made on first read: most tools never look at it, and each call needs its own (listeners must not pile up on a shared one).
  get signal(): AbortSignal {
    return (this.#signal ??= new AbortController().signal);
  }

  get context(): RequestContext {
    auditOwner(this.#owner);
    return this.#owner;
  }

  emit(event: ProgressEvent): boolean {
    return emitAs(this.#owner, event, 'call.emit(event)');
  }
}
