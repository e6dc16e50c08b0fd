import type { EventCursor } from '../supervisor/event-log.ts';
import { outcomeOf, type EventJson, type Operation } from './operation-outcome.ts';
import { plain, type Painter } from './paint.ts';
import { SupervisorCallError, type SupervisorClient } from './supervisor-client.ts';
import { formatMs } from './units.ts';

const POLL_MS = 250;
/** Failed polls in a row are retried this long (a busy supervisor); longer, and following gives up. */
const UNREACHABLE_MS = 10_000;

export interface FollowOptions {
  client: SupervisorClient;
  operation: Operation;
  workers: string[];
  /** from the action's answer: the events after it are the operation's */
  cursor: EventCursor;
  deadlineMs: number;
  write(line: string): void;
  paint?: Painter;
}

interface EventsAnswer {
  stream: string;
  events: EventJson[];
  missed: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Follows an operation through the supervisor's events (GET /api/events?after=<id>, so that no
 * step is missed however fast) and writes one line per worker as it ends. Resolves 0 when every
 * worker ended well, 1 when one failed, timed out, or following it became impossible.
 */
export async function followOperation({ client, operation, workers, cursor, deadlineMs, write, paint = plain }: FollowOptions): Promise<number> {
  const width = Math.max(0, ...workers.map((name) => name.length));
  const line = (name: string, text: string, ok: boolean) => write(`${name.padEnd(width)}  ${ok ? text : paint(text, 'red')}`);
  const waiting = new Set(workers);
  const deadline = Date.now() + deadlineMs;
  let after = cursor.after;
  let failed = false;
  let failingSince: number | undefined;

  while (waiting.size > 0 && Date.now() < deadline) {
    let answer: EventsAnswer;
    try {
      answer = (await client.call<EventsAnswer>('GET', `/api/events?after=${after}`)).body;
      failingSince = undefined;
    } catch (error) {
      if (!(error instanceof SupervisorCallError)) throw error;
      failingSince ??= Date.now();
      if (Date.now() - failingSince < UNREACHABLE_MS) {
        await sleep(POLL_MS);
        continue;
      }
      write(paint(`lost the supervisor while following: ${error.message}`, 'red'));
      return 1;
    }
    if (answer.stream !== cursor.stream) {
      write(paint('the supervisor restarted while following; see `switchyard fleet` for where the workers are', 'red'));
      return 1;
    }
    if (answer.missed) {
      write(paint('more fleet events happened than the supervisor keeps; see `switchyard fleet` for where the workers are', 'red'));
      return 1;
    }
    for (const event of answer.events) {
      after = Math.max(after, event.id ?? after);
      if (!event.worker || !waiting.has(event.worker)) continue;
      const outcome = outcomeOf(operation, event);
      if (!outcome) continue;
      waiting.delete(event.worker);
      failed ||= !outcome.ok;
      line(event.worker, outcome.text, outcome.ok);
    }
    if (answer.events.length === 0) await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
  }
  if (waiting.size === 0) return failed ? 1 : 0;
  const states = await currentStates(client);
  for (const name of waiting) line(name, `timed out after ${formatMs(deadlineMs)}${states.has(name) ? ` (${states.get(name)})` : ''}`, false);
  return 1;
}

/** Each worker's state now, for a timeout's lines; empty when the supervisor does not answer. */
async function currentStates(client: SupervisorClient): Promise<Map<string, string>> {
  try {
    const { body } = await client.call<{ pools: Array<{ workers: Array<{ name: string; state: string }> }> }>('GET', '/api/fleet');
    return new Map(body.pools.flatMap((pool) => pool.workers.map((worker) => [worker.name, worker.state] as const)));
  } catch (error) {
    if (!(error instanceof SupervisorCallError)) throw error;
    return new Map();
  }
}
