/** Runs one of scripts/ensure-*.sh, which install or build a test dependency and print its path last. */
import { execFile } from 'node:child_process';

/** How an ensure script ended: exit status (or a spawn error code such as 'ENOENT'), and its output. */
export interface EnsureResult {
  readonly exitCode: number | string | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The exit status our ensure scripts use for "this machine cannot provide it". */
export const ENSURE_UNAVAILABLE_EXIT_CODE = 3;

export function runEnsureScript(script: string, timeoutMs: number): Promise<EnsureResult> {
  return new Promise((resolve) => {
    execFile('bash', [script], { timeout: timeoutMs, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      // `code` is the exit status, or a string such as 'ENOENT' when bash itself is missing.
      const exitCode = error === null ? 0 : (error.code ?? null);
      const timedOut = error?.killed === true ? `\n(killed after ${timeoutMs} ms)` : '';
      resolve({ exitCode, stdout, stderr: stderr + timedOut });
    });
  });
}
