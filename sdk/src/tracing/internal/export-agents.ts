import { readFileSync } from 'node:fs';
import type { AgentOptions } from 'node:https';
import type { Socket } from 'node:net';
import { resolve } from 'node:path';
import { otlpTimeoutFromEnv } from './otel-env.js';
import { reportOnce } from './report.js';

// The builtin, not its ES module view: building node:http's costs tens of ms at import (it evaluates undici for its lazy exports).
const { Agent: HttpAgent } = process.getBuiltinModule('node:http');
type HttpAgent = InstanceType<typeof HttpAgent>;
const { Agent: HttpsAgent } = process.getBuiltinModule('node:https');

/** The OTLP signals isotrace exports, as they are named in OTEL_EXPORTER_OTLP_<SIGNAL>_* variables. */
export type OtlpSignal = 'TRACES' | 'METRICS';

/** The OTLP exporters' own export timeout, where none is set. */
const DEFAULT_TIMEOUT_MS = 10_000;
/** A socket serving an export that sends and receives nothing for this many export timeouts is stuck (see watchForStall()). */
const STALLED_AFTER_TIMEOUTS = 2;

/**
 * The HTTP(S) agents of isotrace's OTLP exporters, so shutdown() can close
 * them. A collector that answers one byte at a time never trips the request's
 * timeout (each byte resets it), and its open socket would keep the process
 * alive after shutdown() resolved. close() destroys every socket and refuses
 * new connections (the exporter's retries then fail at once). A socket that
 * stops moving while it serves a request is closed (see watchForStall()), and
 * allWritten() tells whether any still has bytes to send.
 */
export class ExportAgents {
  readonly #agents: HttpAgent[] = [];
  /** Every socket the agents opened that is not closed yet. */
  readonly #sockets = new Set<Socket>();
  #closed = false;

  /**
   * The `httpAgentOptions` of one signal's exporter: keep-alive agents like the
   * exporter's own, with the same TLS files from the environment (an agent
   * factory replaces the exporter's, which is where it reads them).
   * `timeoutMillis` is the exporter's export timeout option; without it, the
   * exporter reads its timeout from the environment, as this does.
   */
  factoryFor(signal: OtlpSignal, timeoutMillis?: number): (protocol: string) => HttpAgent {
    const stallMs = STALLED_AFTER_TIMEOUTS * (timeoutMillis ?? otlpTimeoutFromEnv(signal) ?? DEFAULT_TIMEOUT_MS);
    return (protocol) => {
      const agent = protocol === 'https:' ? new HttpsAgent({ keepAlive: true, ...tlsFromEnv(signal) }) : new HttpAgent({ keepAlive: true });
      const connect = agent.createConnection.bind(agent);
      agent.createConnection = (options, callback) => {
        if (!this.#closed) return this.#track(connect(options, callback) as Socket | undefined, agent, stallMs);
        const refused = new Error('isotrace: tracing was shut down; no more exports are sent.');
        process.nextTick(() => (callback as ((error: Error) => void) | undefined)?.(refused));
        return undefined;
      };
      this.#agents.push(agent);
      return agent;
    };
  }

  close(): void {
    this.#closed = true;
    for (const agent of this.#agents) agent.destroy();
  }

  /**
   * Whether the sockets hold no bytes the OS has not taken yet. A collector
   * may answer before it has read a request's body; until then the socket
   * still reads that body from the buffer it was given (Node does not copy it).
   */
  allWritten(): boolean {
    for (const socket of this.#sockets) if (socket.writableLength > 0) return false;
    return true;
  }

  #track(socket: Socket | undefined, agent: HttpAgent, stallMs: number): Socket | undefined {
    if (!socket) return socket;
    this.#sockets.add(socket);
    const watch = watchForStall(socket, agent, stallMs);
    socket.once('close', () => {
      clearInterval(watch);
      this.#sockets.delete(socket);
    });
    return socket;
  }
}

/**
 * Destroys `socket` when, serving a request (not among the agent's free
 * sockets), it sends and receives nothing for `stallMs`. A request's own
 * timeout watches its socket only until the response has ended; a collector
 * that answers before it has read a gzipped body, and reads slowly, leaves
 * Node's client waiting for a 'drain' that never comes: the body stops
 * halfway, and its socket would stay open, busy, for as long as the process.
 */
function watchForStall(socket: Socket, agent: HttpAgent, stallMs: number): NodeJS.Timeout {
  let seen = -1;
  return setInterval(() => {
    const progress = socket.bytesWritten + socket.bytesRead;
    if (progress === seen && !isFree(agent, socket)) {
      reportOnce('export-socket-stalled', `an OTLP export connection sent and received nothing for ${stallMs} ms while serving a request; it is closed.`);
      socket.destroy();
    }
    seen = progress;
  }, stallMs).unref();
}

function isFree(agent: HttpAgent, socket: Socket): boolean {
  for (const free of Object.values(agent.freeSockets)) if (free?.includes(socket)) return true;
  return false;
}

/** OTEL_EXPORTER_OTLP_[<SIGNAL>_]CERTIFICATE, CLIENT_CERTIFICATE and CLIENT_KEY, read as the OTLP exporters read them. */
function tlsFromEnv(signal: OtlpSignal): Pick<AgentOptions, 'ca' | 'cert' | 'key'> {
  const ca = fileFromEnv(signal, 'CERTIFICATE');
  const cert = fileFromEnv(signal, 'CLIENT_CERTIFICATE');
  const key = fileFromEnv(signal, 'CLIENT_KEY');
  return { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
}

function fileFromEnv(signal: OtlpSignal, name: string): Buffer | undefined {
  const variable = [`OTEL_EXPORTER_OTLP_${signal}_${name}`, `OTEL_EXPORTER_OTLP_${name}`].find((candidate) => process.env[candidate]?.trim());
  if (!variable) return undefined;
  try {
    return readFileSync(resolve(process.cwd(), process.env[variable]!.trim()));
  } catch (error) {
    reportOnce(`otlp-tls-file-${variable}`, `could not read the file ${variable} names; exporting without it.`, error);
    return undefined;
  }
}
