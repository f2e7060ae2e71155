// What waking a sleeping thread costs on this machine: the floor under any
// thread hop, piscina's own included. Two threads take turns through a
// SharedArrayBuffer, each sleeping in Atomics.wait until the other notifies it
// (as piscina's workers wait for tasks): each round trip is two wakes and no
// other work. On a virtual machine a wake can cost several microseconds of the
// waker's CPU (the hypervisor wakes the idle virtual CPU) and the woken thread
// runs with cold caches.
import { Worker } from 'node:worker_threads';
import { median } from './harness.ts';

/** The other side: waits for each ping, answers it with a pong. */
const PONG = `
const { workerData } = require('node:worker_threads');
const cells = new Int32Array(workerData);
for (let seen = 0; ; ) {
  Atomics.wait(cells, 0, seen);
  seen = Atomics.load(cells, 0);
  if (seen < 0) break;
  Atomics.store(cells, 1, seen);
  Atomics.notify(cells, 1);
}`;

export interface WakeCost {
  /** Wall time of a round trip (two wakes), ns. */
  roundTripNs: number;
  /** CPU of the pinging thread per round trip (the notify, its own wake-up), ns. */
  pingerCpuNs: number;
}

/** Median over `rounds` rounds of `trips` round trips; the calling thread blocks while it runs. */
export async function measureThreadWake(trips = 5_000, rounds = 5): Promise<WakeCost> {
  const shared = new SharedArrayBuffer(8);
  const cells = new Int32Array(shared);
  const worker = new Worker(PONG, { eval: true, workerData: shared });
  await new Promise((resolve) => worker.once('online', resolve));
  const wall: number[] = [];
  const cpu: number[] = [];
  let ping = 0;
  for (let round = -1; round < rounds; round++) {
    const cpuBefore = process.threadCpuUsage();
    const start = process.hrtime.bigint();
    for (let i = 0; i < trips; i++) {
      Atomics.store(cells, 0, ++ping);
      Atomics.notify(cells, 0);
      while (Atomics.load(cells, 1) !== ping) Atomics.wait(cells, 1, ping - 1);
    }
    const ns = Number(process.hrtime.bigint() - start) / trips;
    const used = process.threadCpuUsage(cpuBefore);
    if (round >= 0) {
      wall.push(ns);
      cpu.push(((used.user + used.system) * 1000) / trips);
    }
  }
  Atomics.store(cells, 0, -1);
  Atomics.notify(cells, 0);
  await worker.terminate();
  return { roundTripNs: median(wall), pingerCpuNs: median(cpu) };
}
