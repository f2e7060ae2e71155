import { isDeepStrictEqual } from 'node:util';
import type { WorkerSettings } from '../../tracing/internal/runtime.js';

/** The submitting thread's settings, and the BroadcastChannel serving its SharedState store (when workers do not open the store themselves). */
export type SetupData = [settings: WorkerSettings, storeChannel?: string];

/**
 * What a worker thread needs to set up tracing, which only a thread's first
 * task reads; every task carries it all the same (piscina picks the thread,
 * and a new one may start at any time). As one JSON string, made once per pool
 * and settings: a string costs far less to clone than an object with its
 * properties. Settings JSON would not give back as they are (a store recipe
 * whose options hold a Date, a Map, …) travel as structured-clone data.
 */
export type WorkerSetup = string | SetupData;

/** Encodes a pool's setup, again only when the settings or the channel change (a restart of isotrace). */
export class SetupEncoder {
  #settings: WorkerSettings | undefined;
  #storeChannel: string | undefined;
  #setup: WorkerSetup | undefined;

  encode(settings: WorkerSettings, storeChannel: string | undefined): WorkerSetup {
    if (this.#setup !== undefined && this.#settings === settings && this.#storeChannel === storeChannel) return this.#setup;
    const data: SetupData = storeChannel === undefined ? [settings] : [settings, storeChannel];
    this.#settings = settings;
    this.#storeChannel = storeChannel;
    this.#setup = asJson(data) ?? data;
    return this.#setup;
  }
}

/** The setup a worker thread received. */
export function decodeSetup(setup: WorkerSetup): SetupData {
  return typeof setup === 'string' ? (JSON.parse(setup) as SetupData) : setup;
}

function asJson(data: SetupData): string | undefined {
  try {
    const json = JSON.stringify(data);
    return isDeepStrictEqual(JSON.parse(json), data) ? json : undefined;
  } catch {
    return undefined; // a BigInt, a cycle: structured clone decides whether it can be sent
  }
}
