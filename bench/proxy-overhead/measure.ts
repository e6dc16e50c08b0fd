import { runLoad, type LoadResult } from '../lib/load.ts';
import { runPacedLoad } from '../lib/paced-load.ts';
import { stealMeter } from '../lib/steal.ts';
import type { Progress } from '../lib/progress.ts';
import { fixed, thousands } from '../lib/table.ts';
import type { Target } from '../lib/target.ts';
import type { TargetId, TargetSpec } from './targets.ts';

export interface Settings {
  connections: number;
  warmupSec: number;
  /**
   * once per target, before its first round: saturation load until V8 has compiled its hot paths
   * (optimisations settle after some 35,000 requests; until then the compiler threads share the
   * target's core, and a target with more code pays longer)
   */
  jitWarmupSec: number;
  durationSec: number;
  /**
   * each phase measures every target this many times, interleaved, and keeps the best; at
   * saturation Switchyard and the bare forwarder run back to back, in alternating order
   */
  rounds: number;
  /** the fixed rate is this fraction of the bare forwarder's maximum */
  rateFraction: number;
  /**
   * processes started per target; round r measures instance r mod this. A Node process's speed is
   * set at its start (what V8 happened to compile, and how), and two Switchyard processes of the
   * same build differed by up to 12% through their whole lives, so one process is one sample.
   */
  instances: number;
}

/** One measurement of one target, with the steal time of the target's core while it ran. */
export type Round = LoadResult & { stealPercent: number };

export interface Measurement {
  spec: TargetSpec;
  /** the round with the highest req/s */
  saturation?: Round;
  /** every saturation round, in round order (see saturationOrder) */
  saturationRounds: Round[];
  /** the round with the lowest p99 */
  atRate?: Round;
  /** every fixed-rate round, in round order */
  atRateRounds: Round[];
  /** why the target or a phase was not measured */
  note?: string;
}

/**
 * One round of Switchyard and the bare forwarder at saturation at the same time, on the same core,
 * each under its own load: whatever the host does to that core in those seconds, it does to both.
 */
export interface SharedCoreRound {
  bare: Round;
  switchyard: Round;
}

/**
 * Switchyard's requests per CPU-second over the bare forwarder's in one shared-core round (a
 * CPU-bound server's saturation rate is its core's second over its CPU per request). CPU time
 * rather than req/s, so that how the scheduler splits the core between the two does not enter.
 * Sharing the core adds context-switch and cache costs to both: steadier than rounds alone, but
 * measured at another operating point.
 */
export const sharedCoreRatio = (round: SharedCoreRound) => round.bare.cpuUsPerRequest / round.switchyard.cpuUsPerRequest;

/** how many processes of a target the run starts and measures in turn */
const instanceCount = (spec: TargetSpec, settings: Settings) => (spec.shared ? 1 : settings.instances);

const sharesCore = (specs: TargetSpec[]) => ['bare', 'switchyard'].every((id) => specs.some((spec) => spec.id === id));

export const progressSteps = (specs: TargetSpec[], settings: Settings) =>
  specs.reduce((steps, spec) => steps + instanceCount(spec, settings), 0) + 2 * specs.length * settings.rounds + (sharesCore(specs) ? settings.rounds : 0);

/**
 * The order of one saturation round: Switchyard and the bare forwarder first and back to back, so
 * that their ratio compares the same minute of a noisy host, the one that went first going second
 * in the next round (A B, B A, ...), so that a drift over the run does not favour either; then the rest.
 */
export function saturationOrder<T>(targets: T[], round: number, idOf: (target: T) => TargetId): T[] {
  const pair = (['bare', 'switchyard'] as const).map((id) => targets.find((target) => idOf(target) === id)).filter((target): target is T => target !== undefined);
  const rest = targets.filter((target) => !pair.includes(target));
  return [...(round % 2 === 1 ? pair : pair.reverse()), ...rest];
}

const best = (results: Round[], better: (a: Round, b: Round) => boolean) =>
  results.reduce<Round | undefined>((kept, result) => (kept === undefined || better(result, kept) ? result : kept), undefined);

/**
 * Starts every target (`instances` processes of each, all in front of the same upstream), then runs
 * the saturation phase (`connections` closed-loop connections, as fast as they go) and the
 * fixed-rate phase (a fraction of the bare forwarder's best) in interleaved rounds, so that
 * background load on a shared machine hits all targets alike; between the two, the side-by-side
 * rounds of Switchyard and the bare forwarder (SharedCoreRound).
 */
export async function measureAll(
  specs: TargetSpec[],
  upstream: string,
  settings: Settings,
  progress: Progress,
  /** the core whose steal time is charged to each round (the target's own); all cores when undefined */
  targetCpu?: number,
): Promise<{ measurements: Measurement[]; rate: number; sharedCore: SharedCoreRound[] }> {
  const measurements: Measurement[] = specs.map((spec) => ({ spec, saturationRounds: [], atRateRounds: [], note: spec.skipped }));
  const running: { measurement: Measurement; instances: Target[] }[] = [];
  /** the instance of a target that a round measures */
  const instanceFor = (instances: Target[], round: number) => instances[(round - 1) % instances.length];
  try {
    for (const measurement of measurements.filter((m) => !m.spec.skipped)) {
      const instances: Target[] = [];
      running.push({ measurement, instances });
      for (let i = 0; i < instanceCount(measurement.spec, settings); i++) instances.push(await measurement.spec.start(upstream));
    }
    const summary = (result: Round) => {
      const problems = result.errors + result.non2xx ? `  errors ${result.errors} non-2xx ${result.non2xx}` : '';
      return `${thousands(result.requestsPerSec)} req/s  p50 ${fixed(result.p50Ms, 3)} ms  p99 ${fixed(result.p99Ms, 3)} ms  steal ${fixed(result.stealPercent, 0)}%${problems}`;
    };
    /** Closed-loop saturation (autocannon) without a rate; open-loop paced load with one. */
    const load = async (label: string, target: Target, rate: number | undefined, warmupSec: number) => {
      progress.start(label);
      const run = (durationSec: number, pid?: number, onProgress?: (responses: number, elapsed: number) => void) =>
        rate === undefined
          ? runLoad({ url: target.url, pid, connections: settings.connections, durationSec, onProgress })
          : runPacedLoad({ url: target.url, pid, connections: settings.connections, durationSec, rate, onProgress });
      if (warmupSec > 0) {
        progress.update('warming up');
        await run(warmupSec);
      }
      const steal = stealMeter();
      const loaded = await run(settings.durationSec, target.pid, (responses, elapsed) =>
        progress.update(`${thousands(responses / elapsed)} req/s, ${Math.round(elapsed)}/${settings.durationSec} s`),
      );
      const result: Round = { ...loaded, stealPercent: steal(targetCpu) };
      progress.done(summary(result));
      return result;
    };
    /** Saturation on both targets at once, each with its own `connections` connections. */
    const loadTogether = async (label: string, targets: [Target, Target]) => {
      progress.start(label);
      const run = (durationSec: number, pids: boolean) =>
        Promise.all(targets.map((target) => runLoad({ url: target.url, pid: pids ? target.pid : undefined, connections: settings.connections, durationSec })));
      progress.update('warming up');
      await run(settings.warmupSec, false);
      progress.update(`both at saturation, ${settings.durationSec} s`);
      const steal = stealMeter();
      const loaded = await run(settings.durationSec, true);
      const stealPercent = steal(targetCpu);
      const [first, second] = loaded.map((result): Round => ({ ...result, stealPercent }));
      progress.done(`${summary(first)}\n    ${summary(second)}`);
      return [first, second] as const;
    };

    for (const { measurement, instances } of running) {
      for (const [i, target] of instances.entries()) {
        progress.start(`${measurement.spec.label} #${i + 1}: JIT warm-up, ${settings.jitWarmupSec} s at saturation`);
        await runLoad({ url: target.url, connections: settings.connections, durationSec: settings.jitWarmupSec });
        progress.done();
      }
    }

    for (let round = 1; round <= settings.rounds; round++) {
      for (const { measurement, instances } of saturationOrder(running, round, (entry) => entry.measurement.spec.id)) {
        const target = instanceFor(instances, round);
        const result = await load(`round ${round}/${settings.rounds} ${measurement.spec.label}: saturation`, target, undefined, settings.warmupSec);
        measurement.saturationRounds.push(result);
      }
    }
    for (const { measurement } of running) measurement.saturation = best(measurement.saturationRounds, (a, b) => a.requestsPerSec > b.requestsPerSec);

    const sharedCore: SharedCoreRound[] = [];
    const [bareRunning, switchyardRunning] = (['bare', 'switchyard'] as const).map((id) => running.find((entry) => entry.measurement.spec.id === id));
    if (bareRunning && switchyardRunning) {
      for (let round = 1; round <= settings.rounds; round++) {
        const label = `round ${round}/${settings.rounds} bare http-proxy-3 and Switchyard at once, on one core`;
        const [bare, switchyard] = await loadTogether(label, [instanceFor(bareRunning.instances, round), instanceFor(switchyardRunning.instances, round)]);
        sharedCore.push({ bare, switchyard });
      }
    }

    const bare = measurements.find((m) => m.spec.id === 'bare')?.saturation;
    if (!bare) throw new Error('the bare http-proxy-3 forwarder was not measured: it sets the fixed rate');
    const rate = Math.round(bare.requestsPerSec * settings.rateFraction);
    for (let round = 1; round <= settings.rounds; round++) {
      for (const { measurement, instances } of running) {
        const target = instanceFor(instances, round);
        const label = `round ${round}/${settings.rounds} ${measurement.spec.label}: fixed rate ${thousands(rate)} req/s`;
        if (measurement.saturation!.requestsPerSec < rate * 1.05) {
          measurement.note = `saturates at ${thousands(measurement.saturation!.requestsPerSec)} req/s, below the fixed rate`;
          progress.start(`${label}: skipped`);
          progress.done();
          continue;
        }
        measurement.atRateRounds.push(await load(label, target, rate, round <= instances.length ? settings.warmupSec : 0));
      }
    }
    for (const { measurement } of running) measurement.atRate = best(measurement.atRateRounds, (a, b) => a.p99Ms < b.p99Ms);
    return { measurements, rate, sharedCore };
  } finally {
    await Promise.all(running.flatMap(({ instances }) => instances.map((target) => target.stop())));
  }
}
