import { reportOnce } from './report.js';

/** Waits for `work`, but never longer than `ms`: telemetry must not hold the application. */
export async function withinTimeout(work: Promise<unknown>, ms: number, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
    timer.unref();
  });
  try {
    const outcome = await Promise.race([work.then(() => 'done' as const), timeout]);
    if (outcome === 'timeout') reportOnce(`${what}-timeout`, `${what} did not finish within ${ms} ms; spans still queued may be lost.`);
  } catch (error) {
    reportOnce(`${what}-failed`, `${what} failed; spans still queued may be lost.`, error);
  } finally {
    clearTimeout(timer);
  }
}
