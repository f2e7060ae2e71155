import { readFileSync } from 'node:fs';
import type { AgentOptions } from 'node:https';
import { resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { reportOnce } from './report.js';

// The builtin, not its ES module view: building node:http's costs tens of ms at import (it evaluates undici for its lazy exports).
const { Agent: HttpAgent } = process.getBuiltinModule('node:http');
type HttpAgent = InstanceType<typeof HttpAgent>;
const { Agent: HttpsAgent } = process.getBuiltinModule('node:https');

/** The OTLP signals isotrace exports, as they are named in OTEL_EXPORTER_OTLP_<SIGNAL>_* variables. */
export type OtlpSignal = 'TRACES' | 'METRICS';

/**
 * The HTTP(S) agents of isotrace's OTLP exporters, so shutdown() can close
 * them. A collector that answers one byte at a time never trips the request's
 * timeout (each byte resets it), and its open socket would keep the process
 * alive after shutdown() resolved. close() destroys every socket and refuses
 * new connections (the exporter's retries then fail at once).
 */
export class ExportAgents {
  readonly #agents: HttpAgent[] = [];
  /** Every socket the agents opened that is not closed yet. */
  readonly #sockets = new Set<Duplex>();
  #closed = false;

  /**
   * The `httpAgentOptions` of one signal's exporter: keep-alive agents like the
   * exporter's own, with the same TLS files from the environment (an agent
   * factory replaces the exporter's, which is where it reads them).
   */
  factoryFor(signal: OtlpSignal): (protocol: string) => HttpAgent {
    return (protocol) => {
      const agent = protocol === 'https:' ? new HttpsAgent({ keepAlive: true, ...tlsFromEnv(signal) }) : new HttpAgent({ keepAlive: true });
      const connect = agent.createConnection.bind(agent);
      agent.createConnection = (options, callback) => {
        if (!this.#closed) return this.#track(connect(options, callback));
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

  #track<T extends Duplex | null | undefined>(socket: T): T {
    if (socket) {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    }
    return socket;
  }
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
