import { seededRandom } from '../lib/browsing.ts';
import type { Progress } from '../lib/progress.ts';
import { botClone, type BotPlan, type BotResult } from '../stampede/bots.ts';
import { browseRepoPages, onWarmTarget, type StampedeLoad } from '../stampede/phase.ts';
import { planEvents, type EventRecord, type PlannedEvent, type TimedLoad } from './schedule.ts';
import type { ReloadableTarget, ReloadTargetSpec } from './target.ts';

// One target, one go: fresh workers, the target in front of them, warm-up; then users browse and
// CI bots clone in a loop (all starting together, as in the midnight stampede, then each starting
// its next clone soon after the last) while the reloads and replacements happen on schedule.

export interface ReloadSettings extends StampedeLoad {
  /** how long the load runs (events spread over it); clones started before the end finish after it */
  loadSec: number;
  reloads: number;
  replacements: number;
  /** a page load overlapping [event start, event end + windowSec] counts as during the event */
  windowSec: number;
}

export interface ReloadPhaseResult {
  spec: ReloadTargetSpec;
  loads: TimedLoad[];
  clones: BotResult[];
  events: EventRecord[];
  restarts: number;
}

/** how much longer than loadSec the load may run while waiting for the last events */
const MAX_OVERRUN_MS = 60_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Bot `bot` clones again and again until `over()`, with a short pause between clones. */
async function cloneLoop(plan: BotPlan, bot: number, port: number, over: () => boolean, deadlineMs: number, onDone: (result: BotResult) => void): Promise<void> {
  const random = seededRandom(1000 + bot);
  while (!over()) {
    onDone(await botClone(plan, bot, port, deadlineMs));
    await sleep(500 + random() * 1500);
  }
}

/**
 * Runs the events in order at their planned times (later, when one had to wait for the previous);
 * one due after `deadline` is recorded as not run.
 */
async function runEvents(target: ReloadableTarget, plan: PlannedEvent[], startedAt: number, deadline: number, onEvent: (event: EventRecord) => void): Promise<void> {
  for (const planned of plan) {
    await sleep(startedAt + planned.atSec * 1000 - Date.now());
    const calledAt = Date.now();
    if (calledAt >= deadline) {
      onEvent({ ...planned, startedAt: calledAt, endedAt: calledAt, waitedMs: 0, ok: false, detail: 'not run: the load had ended' });
      continue;
    }
    const outcome = await (planned.kind === 'reload' ? target.reload(planned.nth) : target.replace()).catch((error: Error) => ({ ok: false, detail: error.message, waitedMs: 0 }));
    const waitedMs = outcome.waitedMs ?? 0;
    onEvent({ ...planned, startedAt: calledAt + waitedMs, endedAt: Date.now(), waitedMs, ok: outcome.ok, detail: outcome.detail });
  }
}

export async function runReloadPhase(spec: ReloadTargetSpec, repos: string, settings: ReloadSettings, progress: Progress): Promise<ReloadPhaseResult> {
  progress.start(spec.label);
  return onWarmTarget(settings, repos, (fleet) => spec.start(fleet), true, async (target, _fleet, relays) => {
    const loads: TimedLoad[] = [];
    const clones: BotResult[] = [];
    const events: EventRecord[] = [];
    const ticker = setInterval(() => {
      const failed = loads.filter((timed) => !timed.load.ok).length;
      progress.update(`pages ${loads.length}, failed ${failed}, clones ${clones.filter((c) => c.ok).length} ok ${clones.filter((c) => !c.ok).length} broken, events ${events.length}`);
    }, 500);
    try {
      const startedAt = Date.now();
      // the events run from a few seconds in to a window's length before the end
      const plan = planEvents(settings.reloads, settings.replacements, Math.min(5, settings.loadSec / 10), Math.max(0, settings.loadSec - settings.windowSec - 5));
      // the load lasts loadSec, and longer when a replacement had to wait, until the last event's window has passed (bounded)
      const until = startedAt + settings.loadSec * 1000;
      const hardEnd = until + MAX_OVERRUN_MS;
      let eventsEnded: number | undefined;
      const eventsDone = runEvents(target, plan, startedAt, hardEnd, (event) => events.push(event)).finally(() => (eventsEnded = Date.now()));
      const over = () => Date.now() >= (eventsEnded === undefined ? hardEnd : Math.min(hardEnd, Math.max(until, eventsEnded + settings.windowSec * 1000)));
      const browsing = browseRepoPages(target.url, settings, {
        until: hardEnd,
        shouldStop: over,
        onLoad: (load) => {
          const endedAt = Date.now();
          loads.push({ load, startedAt: endedAt - load.totalMs, endedAt });
        },
      });
      const cloning = Promise.all(relays!.ports.map((port, bot) => cloneLoop(settings, bot, port, over, settings.cloneDeadlineSec * 1000, (result) => clones.push(result))));
      await Promise.all([browsing, cloning, eventsDone]);
      await target.settle();
    } finally {
      clearInterval(ticker);
    }
    const restarts = target.restarts();
    const failed = loads.filter((timed) => !timed.load.ok).length;
    const broken = clones.filter((clone) => !clone.ok).length;
    progress.done(`pages ${loads.length}, failed ${failed}, clones ${clones.length - broken}/${clones.length}, events ${events.filter((e) => e.ok).length}/${events.length} ok, restarts ${restarts}`);
    return { spec, loads, clones, events, restarts };
  });
}
