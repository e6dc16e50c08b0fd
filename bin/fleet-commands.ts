import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { EventCursor } from '../supervisor/event-log.ts';
import type { Command } from './command.ts';
import { USAGE_EXIT } from './command.ts';
import { fleetTable, type FleetSnapshot } from './fleet-view.ts';
import { followOperation } from './follow-operation.ts';
import { operationDeadlineMs } from './operation-deadline.ts';
import type { Operation } from './operation-outcome.ts';
import { painterFor } from './paint.ts';
import { withSupervisor, type SupervisorClient } from './supervisor-client.ts';
import { formatMs } from './units.ts';

const write = (line: string) => process.stdout.write(`${line}\n`);

/** Arguments as `parseArgs` reads them; a mistake is a usage error (exit 2) with its message. */
class UsageError extends Error {}

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true as const });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Runs a command body; a usage mistake prints its message and exits 2. */
function command(args: string | undefined, summary: string, run: (args: string[]) => Promise<number>): Command {
  return {
    args,
    summary,
    run: async (argv) => {
      try {
        return await run(argv);
      } catch (error) {
        if (!(error instanceof UsageError)) throw error;
        process.stderr.write(`${error.message} (switchyard --help lists the commands)\n`);
        return USAGE_EXIT;
      }
    },
  };
}

const FOLLOW_OPTIONS = { 'no-wait': { type: 'boolean' }, timeout: { type: 'string' } } as const;

/** The one positional argument, and the follow options. */
function followArgs(args: string[], what: string): { target: string; wait: boolean; timeoutMs?: number } {
  const { values, positionals } = parse(args, FOLLOW_OPTIONS);
  if (positionals.length !== 1) throw new UsageError(`expected one ${what}`);
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && !(timeout > 0)) throw new UsageError(`--timeout takes seconds (more than 0), not ${values.timeout}`);
  return { target: positionals[0], wait: !values['no-wait'], timeoutMs: timeout && timeout * 1000 };
}

async function fleet(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } });
  if (positionals.length > 0) throw new UsageError(`fleet takes no argument (got ${positionals[0]})`);
  return withSupervisor(async (client) => {
    const { body } = await client.call<FleetSnapshot>('GET', '/api/fleet');
    write(values.json ? JSON.stringify(body, null, 2) : fleetTable(body, painterFor(process.stdout)).trimEnd());
    return 0;
  });
}

/** One supervisor's part of a fleet action: the workers to follow there and where their events begin. */
interface Part {
  /** another host's supervisor (a site of several hosts); absent: the one asked */
  supervisor?: string;
  workers: string[];
  cursor: EventCursor;
}

/** What a fleet action answered: where to follow it. */
interface Started {
  parts: Part[];
  /** said before the progress lines */
  notes: string[];
  /** hosts whose part could not start: each a line, and exit 1 */
  failures: string[];
}

/** A roll's part on another host, as the supervisor asked passed it on (supervisor/site-forward.ts). */
interface HostPart {
  host: string;
  supervisor: string;
  queued?: string[];
  alreadyPending?: string[];
  eventCursor?: EventCursor;
  error?: string;
}

const pendingNote = (workers: string[]) => (workers.length ? [`${workers.join(', ')}: a recycle was already queued or running; following it`] : []);

/**
 * Posts a fleet action, then (unless --no-wait, which prints the answer as it is) follows it to
 * the end with one line per worker; the deadline comes from the pool's limits (--timeout overrides).
 */
async function runAction(operation: Operation, args: string[], what: string, route: (target: string) => string, start: (answer: any) => Started): Promise<number> {
  const { target, wait, timeoutMs } = followArgs(args, what);
  return withSupervisor(async (client) => {
    const { body } = await client.call('POST', route(target));
    if (!wait) {
      write(JSON.stringify(body));
      return 0;
    }
    const started = start(body);
    const paint = painterFor(process.stdout);
    for (const note of started.notes) write(note);
    for (const failure of started.failures) write(paint(failure, 'red'));
    const parts = started.parts.filter((part) => part.workers.length > 0);
    const failed = started.failures.length > 0 ? 1 : 0;
    if (parts.length === 0) return failed;
    const workers = parts.flatMap((part) => part.workers);
    const deadlineMs = timeoutMs ?? (await deadlineFor(client, operation, workers));
    write(`${operation === 'drain' ? 'draining' : 'recycling'} ${workers.join(', ')} (gives up after ${formatMs(deadlineMs)})`);
    // each supervisor's part is followed through its own events, at the same time
    const codes = await Promise.all(
      parts.map((part) => followOperation({ client: part.supervisor ? client.at(part.supervisor) : client, operation, workers: part.workers, cursor: part.cursor, deadlineMs, write, paint })),
    );
    return Math.max(failed, ...codes);
  });
}

/** The supervisor's own bound for the operation, from the pool's limits as it runs them now. */
async function deadlineFor(client: SupervisorClient, operation: Operation, workers: string[]): Promise<number> {
  const { body } = await client.call<FleetSnapshot>('GET', '/api/fleet');
  const pool = body.pools.find((candidate) => candidate.workers.some((worker) => worker.name === workers[0]))!;
  return operationDeadlineMs(operation, pool, workers.length, client.config);
}

const workerRoute = (action: string) => (worker: string) => `/api/workers/${encodeURIComponent(worker)}/${action}`;

export const FLEET_COMMANDS: Record<string, Command> = {
  fleet: command('[--json]', "every worker's state as a table (--json: the supervisor's JSON)", fleet),
  roll: command('<pool> [--no-wait] [--timeout <s>]', 'recycle every worker of a pool, maxUnavailable at a time, and wait for them', (args) =>
    runAction('recycle', args, 'pool', (pool) => `/api/pools/${encodeURIComponent(pool)}/roll`, (answer: { queued: string[]; alreadyPending: string[]; eventCursor: EventCursor; hosts?: HostPart[] }) => {
      const hosts = answer.hosts ?? [];
      const started = hosts.filter((host) => host.eventCursor && !host.error);
      return {
        parts: [
          { workers: [...answer.queued, ...answer.alreadyPending], cursor: answer.eventCursor },
          ...started.map((host) => ({ supervisor: host.supervisor, workers: [...(host.queued ?? []), ...(host.alreadyPending ?? [])], cursor: host.eventCursor! })),
        ],
        notes: [answer.alreadyPending, ...started.map((host) => host.alreadyPending ?? [])].flatMap(pendingNote),
        failures: hosts.filter((host) => !started.includes(host)).map((host) => `host ${host.host}: the roll did not start there: ${host.error ?? 'no answer'}`),
      };
    }),
  ),
  recycle: command('<worker> [--no-wait] [--timeout <s>]', 'drain and restart one worker, e.g. web-0, and wait until it is healthy', (args) =>
    runAction('recycle', args, 'worker', workerRoute('recycle'), (answer: { worker: string; alreadyPending: boolean; eventCursor: EventCursor; supervisor?: string }) => ({
      parts: [{ supervisor: answer.supervisor, workers: [answer.worker], cursor: answer.eventCursor }],
      notes: answer.alreadyPending ? pendingNote([answer.worker]) : [],
      failures: [],
    })),
  ),
  drain: command('<worker> [--no-wait] [--timeout <s>]', 'take one worker out of rotation, leave it out, and wait until idle', (args) =>
    runAction('drain', args, 'worker', workerRoute('drain'), (answer: { worker: string; state: string; started: boolean; eventCursor: EventCursor; supervisor?: string }) => ({
      parts: [{ supervisor: answer.supervisor, workers: answer.started ? [answer.worker] : [], cursor: answer.eventCursor }],
      notes: answer.started ? [] : [`${answer.worker}: already ${answer.state}, nothing to wait for`],
      failures: [],
    })),
  ),
  undrain: command('<worker>', 'put a drained worker back into rotation', async (args) => {
    const { positionals } = parse(args, {});
    if (positionals.length !== 1) throw new UsageError('expected one worker');
    const target = positionals[0];
    return withSupervisor(async (client) => {
      const { body } = await client.call<{ worker: string }>('POST', workerRoute('ready')(target));
      write(`${body.worker}  back in rotation`);
      return 0;
    });
  }),
};
