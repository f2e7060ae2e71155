/**
 * Counts the requests running under one runtime, so what the runtime owns
 * (its own MemoryStore) is released only after the last of them finished:
 * shutting tracing down, or starting it again, never breaks a request in flight.
 */
export class RequestsInFlight {
  #running = 0;
  #waiting: Array<() => void> = [];

  enter(): void {
    this.#running++;
  }

  leave(): void {
    this.#running--;
    if (this.#running === 0 && this.#waiting.length > 0) for (const resolve of this.#waiting.splice(0)) resolve();
  }

  /** Resolves once no request is running (at once when none is). */
  whenIdle(): Promise<void> {
    if (this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.push(resolve));
  }
}
