import net from 'node:net';
import { cpuTimeMs } from './cpu.ts';
import { loadResult, type LoadResult } from './load.ts';

export interface PacedLoadOptions {
  url: string;
  /** requests per second, spread evenly over every second */
  rate: number;
  durationSec: number;
  /** keep-alive connections the generator may open (a cap, not a target) */
  connections: number;
  /** charge the CPU time of this process (and its children) to the run */
  pid?: number;
  onProgress?: (responses: number, elapsedSec: number) => void;
}

const TICK_MS = 1;
const REQUEST_TIMEOUT_MS = 10_000;
const HEADER_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;
const CONNECTION_CLOSE = /\r\nconnection:[ \t]*close/i;

/** One keep-alive connection carrying one request at a time (no pipelining). */
interface Connection {
  socket: net.Socket;
  connected: boolean;
  /** when the request on this connection was due, or undefined while idle */
  dueAt: number | undefined;
  /** bytes of the response read so far, until its head is complete */
  head: Buffer | undefined;
  /** body bytes still to come; -1 while the head is incomplete */
  bodyLeft: number;
  status: number;
  closeAfter: boolean;
}

/**
 * Open-loop load at a fixed rate: requests leave on a 1 ms clock, as many each tick as the rate
 * says are due, whether or not earlier ones have been answered. (autocannon's `overallRate`
 * instead lets every connection send its whole per-second quota back to back and then wait, so
 * half of each second runs at saturation and its percentiles measure queueing, not the proxy.)
 * A request's latency runs from the tick it was due on to the end of its response; a request due
 * while every connection is busy waits for one, on the clock, so a target that falls behind is
 * charged for its backlog (no coordinated omission).
 *
 * It speaks HTTP/1.1 over raw sockets with a prebuilt request and reads responses by their
 * Content-Length: Node's http client (agent, parser, request objects, a timer per request) cost
 * the generator so much CPU and garbage that its own stalls were most of the measured p99 (25 ms
 * and more against a bare upstream at 3,200 req/s, against 4 ms for h2load). Responses without a
 * Content-Length count as errors; the benchmarks' upstream always sends one.
 */
export async function runPacedLoad(options: PacedLoadOptions): Promise<LoadResult> {
  const target = new URL(options.url);
  const port = Number(target.port || 80);
  const request = Buffer.from(`GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nConnection: keep-alive\r\n\r\n`);
  const total = Math.round(options.rate * options.durationSec);
  const latencies = new Float64Array(total);
  const open = new Set<Connection>();
  const idle: Connection[] = [];
  /** due times of requests waiting for a free connection, oldest first */
  const backlog: number[] = [];
  let backlogHead = 0;
  let sent = 0;
  let count = 0;
  let errors = 0;
  let non2xx = 0;
  let settled = 0;
  let allSettled = () => {};
  const done = new Promise<void>((resolve) => (allSettled = resolve));

  const settle = (connection: Connection, outcome: 'ok' | 'non2xx' | 'error') => {
    if (outcome === 'ok') latencies[count++] = performance.now() - connection.dueAt!;
    else if (outcome === 'non2xx') non2xx++;
    else errors++;
    connection.dueAt = undefined;
    if (++settled === total) allSettled();
  };

  const dispatch = (connection: Connection, dueAt: number) => {
    connection.dueAt = dueAt;
    connection.head = undefined;
    connection.bodyLeft = -1;
    if (connection.connected) connection.socket.write(request);
  };

  /** A connection is free again: it takes the oldest waiting request, or goes idle. */
  const release = (connection: Connection) => {
    if (backlogHead < backlog.length) dispatch(connection, backlog[backlogHead++]);
    else idle.push(connection);
  };

  const drop = (connection: Connection) => {
    if (!open.delete(connection)) return;
    const position = idle.indexOf(connection);
    if (position >= 0) idle.splice(position, 1);
    if (connection.dueAt !== undefined) settle(connection, 'error');
    // a request waiting for a connection must not wait for one that will never free
    if (backlogHead < backlog.length && open.size < options.connections) connect(backlog[backlogHead++]);
  };

  const onData = (connection: Connection, chunk: Buffer) => {
    if (connection.dueAt === undefined) {
      connection.socket.destroy(); // bytes nobody asked for
      return drop(connection);
    }
    let body = chunk;
    if (connection.bodyLeft < 0) {
      const head = connection.head ? Buffer.concat([connection.head, chunk]) : chunk;
      const end = head.indexOf(HEADER_END);
      if (end < 0) {
        connection.head = head;
        return;
      }
      const headText = head.toString('latin1', 0, end + 2);
      const length = CONTENT_LENGTH.exec(headText);
      if (!length) {
        connection.socket.destroy();
        return drop(connection);
      }
      connection.status = Number(headText.slice(9, 12));
      connection.closeAfter = CONNECTION_CLOSE.test(headText);
      connection.bodyLeft = Number(length[1]);
      connection.head = undefined;
      body = head.subarray(end + HEADER_END.length);
    }
    connection.bodyLeft -= body.length;
    if (connection.bodyLeft > 0) return;
    if (connection.bodyLeft < 0) {
      connection.socket.destroy(); // more than the response: a framing error
      return drop(connection);
    }
    settle(connection, connection.status >= 200 && connection.status < 300 ? 'ok' : 'non2xx');
    if (connection.closeAfter) {
      connection.socket.end();
      drop(connection);
    } else {
      release(connection);
    }
  };

  const connect = (dueAt: number) => {
    const socket = net.connect({ host: target.hostname, port, noDelay: true });
    const connection: Connection = { socket, connected: false, dueAt: undefined, head: undefined, bodyLeft: -1, status: 0, closeAfter: false };
    open.add(connection);
    dispatch(connection, dueAt);
    socket.once('connect', () => {
      connection.connected = true;
      if (connection.dueAt !== undefined) socket.write(request);
    });
    socket.on('data', (chunk: Buffer) => onData(connection, chunk));
    socket.once('error', () => drop(connection));
    socket.once('close', () => drop(connection));
  };

  const send = (dueAt: number) => {
    const connection = idle.pop();
    if (connection) dispatch(connection, dueAt);
    else if (open.size < options.connections) connect(dueAt);
    else backlog.push(dueAt);
  };

  const cpuBefore = cpuTimeMs(options.pid);
  const startedAt = performance.now();
  const elapsedSec = () => (performance.now() - startedAt) / 1000;
  const clock = setInterval(() => {
    const now = performance.now();
    const due = Math.min(total, Math.floor(((now - startedAt) / 1000) * options.rate));
    for (; sent < due; sent++) send(now);
    if (sent === total) clearInterval(clock);
  }, TICK_MS);
  // One sweep instead of a timer per request: a request unanswered for too long is an error.
  const timeouts = setInterval(() => {
    const now = performance.now();
    for (const connection of open) {
      if (connection.dueAt !== undefined && now - connection.dueAt > REQUEST_TIMEOUT_MS) {
        connection.socket.destroy();
        drop(connection);
      }
    }
  }, 250);
  const ticker = options.onProgress && setInterval(() => options.onProgress!(count, elapsedSec()), 1000);
  try {
    if (total > 0) await done;
    const seconds = elapsedSec();
    return loadResult(latencies, count, seconds, cpuTimeMs(options.pid) - cpuBefore, errors, non2xx);
  } finally {
    clearInterval(clock);
    clearInterval(timeouts);
    if (ticker) clearInterval(ticker);
    for (const connection of open) connection.socket.destroy();
  }
}
