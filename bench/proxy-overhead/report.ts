import type { CpuIsolation } from '../lib/cpu-pinning.ts';
import { median } from '../lib/load.ts';
import type { MachineInfo } from '../lib/machine.ts';
import { fixed, formatTable, thousands } from '../lib/table.ts';
import { sharedCoreRatio, type Measurement, type Round, type Settings, type SharedCoreRound } from './measure.ts';
import type { TargetId } from './targets.ts';

/** The issue's targets for Switchyard against the bare http-proxy-3 forwarder. */
export const GOAL = { throughputRatio: 0.9, addedP99Ms: 1 };

export interface Run {
  measurements: Measurement[];
  rate: number;
  settings: Settings;
  machine: MachineInfo;
  date: Date;
  /** the target's own core, when the machine allowed one */
  isolation?: CpuIsolation;
  /** Switchyard and the bare forwarder measured at once on that core, round by round */
  sharedCore?: SharedCoreRound[];
}

/** with fewer saturation rounds than this, the throughput verdict compares best rounds */
const MIN_PAIRED_ROUNDS = 3;

/** a round that lost more than this share (percent) to steal measured the host more than the target */
const STEAL_NOTICEABLE_PERCENT = 10;

/** how much of its core a target used at the rate it achieved: CPU per request x requests per second */
const coreBusyPercent = (round: Round) => (round.cpuUsPerRequest * round.requestsPerSec) / 10_000;

const meanRate = (measurement: Measurement) =>
  measurement.saturationRounds.reduce((sum, round) => sum + round.requestsPerSec, 0) / measurement.saturationRounds.length;
const byId = (run: Run, id: TargetId) => run.measurements.find((measurement) => measurement.spec.id === id);
const ratio = (value: number | undefined, base: number | undefined) => (value && base ? `${fixed(value / base, 2)}x` : '-');
const signed = (value: number) => (Number.isFinite(value) ? `${value >= 0 ? '+' : ''}${value.toFixed(3)}` : '-');

export function saturationTable(run: Run): string {
  const bare = byId(run, 'bare')?.saturation?.requestsPerSec;
  const direct = byId(run, 'direct')?.saturation?.requestsPerSec;
  const rows = run.measurements.map(({ spec, saturation: s, saturationRounds, note }) => {
    if (!s) return [spec.label, `skipped: ${note ?? ''}`];
    const perRound = saturationRounds.map((round) => round.requestsPerSec);
    const spread = `${thousands(Math.min(...perRound))}-${thousands(Math.max(...perRound))}`;
    return [spec.label, thousands(s.requestsPerSec), spread, ratio(s.requestsPerSec, bare), ratio(s.requestsPerSec, direct), fixed(s.p50Ms, 2), fixed(s.p99Ms, 2), thousands(s.cpuUsPerRequest), fixed(s.stealPercent, 0), String(s.errors + s.non2xx)];
  });
  return formatTable(
    [
      { header: 'target' },
      { header: 'req/s', align: 'right' },
      { header: 'rounds req/s', align: 'right' },
      { header: 'vs bare', align: 'right' },
      { header: 'vs direct', align: 'right' },
      { header: 'p50 ms', align: 'right' },
      { header: 'p99 ms', align: 'right' },
      { header: 'CPU us/req', align: 'right' },
      { header: 'steal %', align: 'right' },
      { header: 'errors', align: 'right' },
    ],
    rows,
  );
}

export function sharedCoreTable(run: Run): string {
  const rows = (run.sharedCore ?? []).map((round, index) => [
    String(index + 1),
    thousands(round.bare.requestsPerSec),
    thousands(round.bare.cpuUsPerRequest),
    thousands(round.switchyard.requestsPerSec),
    thousands(round.switchyard.cpuUsPerRequest),
    `${fixed(sharedCoreRatio(round), 3)}x`,
    `${fixed(round.switchyard.requestsPerSec / round.bare.requestsPerSec, 3)}x`,
    fixed(round.bare.stealPercent, 0),
  ]);
  return formatTable(
    [
      { header: 'round' },
      { header: 'bare req/s', align: 'right' },
      { header: 'bare CPU us/req', align: 'right' },
      { header: 'Switchyard req/s', align: 'right' },
      { header: 'Switchyard CPU us/req', align: 'right' },
      { header: 'req per CPU-s vs bare', align: 'right' },
      { header: 'req/s vs bare', align: 'right' },
      { header: 'steal %', align: 'right' },
    ],
    rows,
  );
}

export function rateTable(run: Run): string {
  const direct = byId(run, 'direct')?.atRate;
  const added = (id: TargetId, value: number, base: number | undefined) => (id === 'direct' || base === undefined ? '' : signed(value - base));
  const measured = run.measurements.filter(({ saturation }) => saturation);
  const rows = measured
    .filter(({ atRate }) => atRate)
    .map(({ spec, atRate: r, atRateRounds }) => {
      const p99s = atRateRounds.map((round) => round.p99Ms);
      return [
        spec.label,
        thousands(r!.requestsPerSec),
        fixed(r!.p50Ms, 3),
        fixed(r!.p99Ms, 3),
        `${fixed(Math.min(...p99s), 2)}-${fixed(Math.max(...p99s), 2)}`,
        added(spec.id, r!.p50Ms, direct?.p50Ms),
        added(spec.id, r!.p99Ms, direct?.p99Ms),
        thousands(r!.cpuUsPerRequest),
        fixed(coreBusyPercent(r!), 0),
        fixed(r!.stealPercent, 0),
        String(r!.errors + r!.non2xx),
      ];
    });
  const table = formatTable(
    [
      { header: 'target' },
      { header: 'achieved req/s', align: 'right' },
      { header: 'p50 ms', align: 'right' },
      { header: 'p99 ms', align: 'right' },
      { header: 'rounds p99 ms', align: 'right' },
      { header: 'added p50 ms', align: 'right' },
      { header: 'added p99 ms', align: 'right' },
      { header: 'CPU us/req', align: 'right' },
      { header: 'core busy %', align: 'right' },
      { header: 'steal %', align: 'right' },
      { header: 'errors', align: 'right' },
    ],
    rows,
  );
  const notes = measured.filter(({ atRate }) => !atRate).map(({ spec, note }) => `\n\nNot measured at this rate: ${spec.label} (${note ?? 'no result'}).`);
  return table + notes.join('');
}

/** Whether Switchyard met the issue's targets, and where it stands against nginx and HAProxy. */
export function verdict(run: Run): { met: boolean; lines: string[] } {
  const switchyard = byId(run, 'switchyard');
  const bare = byId(run, 'bare');
  const direct = byId(run, 'direct');
  const s = switchyard?.saturation?.requestsPerSec;
  const b = bare?.saturation?.requestsPerSec;
  if (!s || !b) return { met: false, lines: ['Switchyard or the bare forwarder was not measured.'] };
  const pairs = switchyard.saturationRounds.map((round, i) => round.requestsPerSec / (bare.saturationRounds[i]?.requestsPerSec ?? Number.NaN));
  const paired = pairs.length >= MIN_PAIRED_ROUNDS;
  const throughputRatio = paired ? median(pairs) : s / b;
  const added = switchyard.atRate && direct?.atRate ? switchyard.atRate.p99Ms - direct.atRate.p99Ms : Number.NaN;
  const throughputOk = throughputRatio >= GOAL.throughputRatio;
  const latencyOk = added < GOAL.addedP99Ms;
  const lines = [
    `Throughput: Switchyard (concurrency 64) does ${fixed(throughputRatio, 3)}x the bare http-proxy-3 forwarder ` +
      (paired
        ? `(the median of ${pairs.length} rounds in which the two ran back to back, in alternating order: ${pairs.map((pair) => `${fixed(pair, 2)}x`).join(', ')}; ` +
          `mean round against mean round ${fixed(meanRate(switchyard) / meanRate(bare), 3)}x, best round against best round ${fixed(s / b, 3)}x) `
        : '') +
      `(target >= ${GOAL.throughputRatio}x): ${throughputOk ? 'met' : 'NOT met'}.`,
    switchyard.atRate
      ? `Latency: at ${thousands(run.rate)} req/s (${Math.round(run.settings.rateFraction * 100)}% of the bare forwarder's maximum) ` +
        `Switchyard adds ${fixed(added, 3)} ms to the direct p99 (target < ${GOAL.addedP99Ms} ms): ${latencyOk ? 'met' : 'NOT met'}.`
      : `Latency: NOT met: Switchyard cannot sustain the fixed rate of ${thousands(run.rate)} req/s ` +
        `(${Math.round(run.settings.rateFraction * 100)}% of the bare forwarder's maximum) at all, so its added p99 there is unbounded (queueing).`,
  ];
  if (switchyard.atRate && bare.atRate && direct?.atRate) {
    const bareAdded = bare.atRate.p99Ms - direct.atRate.p99Ms;
    lines.push(
      `The bare forwarder adds ${fixed(bareAdded, 3)} ms to the direct p99 at the same rate, so Switchyard's own logic adds ` +
        `${signed(added - bareAdded)} ms of p99 on top of http-proxy-3 in Node (p50: ${signed(switchyard.atRate.p50Ms - bare.atRate.p50Ms)} ms).`,
    );
  }
  const steals = run.measurements.flatMap((m) => [...m.saturationRounds, ...m.atRateRounds].map((round) => round.stealPercent)).filter(Number.isFinite);
  if (steals.length > 0) {
    const where = run.isolation ? `the target's core (CPU ${run.isolation.targetCpu})` : 'the machine';
    const disturbed = steals.filter((steal) => steal > STEAL_NOTICEABLE_PERCENT).length;
    lines.push(
      `Steal time on ${where}: median ${fixed(median(steals), 0)}% of a round, at most ${fixed(Math.max(...steals), 0)}%; ` +
        `${disturbed} of ${steals.length} rounds lost more than ${STEAL_NOTICEABLE_PERCENT}% to the host running other guests ` +
        (disturbed > 0 ? `(those rounds measure the host; best-of keeps the undisturbed ones).` : `(the host left the cores alone).`),
    );
  }
  const floor = direct?.atRate;
  if (floor) {
    lines.push(
      `Noise floor: with no proxy at all, p99 is ${fixed(floor.p99Ms, 3)} ms against a p50 of ${fixed(floor.p50Ms, 3)} ms ` +
        `(rounds: ${direct.atRateRounds.map((round) => fixed(round.p99Ms, 2)).join(', ')} ms); ` +
        (floor.p99Ms - floor.p50Ms > GOAL.addedP99Ms
          ? `the machine's own stalls move p99 by more than the ${GOAL.addedP99Ms} ms target, so added p99 is only resolved to that noise, while added p50 is the steady per-request cost.`
          : `p99 differences below ${GOAL.addedP99Ms} ms are resolvable on this machine.`),
    );
  }
  const busy = run.measurements.filter((m) => m.atRate && m.spec.id !== 'direct');
  if (busy.length > 0) {
    lines.push(
      `Core occupancy at the fixed rate (CPU per request x rate): ${busy.map((m) => `${m.spec.label} ${fixed(coreBusyPercent(m.atRate!), 0)}%`).join(', ')}. ` +
        `Added p99 is queueing on the target's one core, which grows steeply with occupancy; a request costs a Node proxy more at this ` +
        `rate than at saturation (fewer requests per event-loop turn share its wake-ups and system calls).`,
    );
  }
  const cpu = (m: Measurement | undefined) => m?.saturation?.cpuUsPerRequest ?? Number.NaN;
  if (Number.isFinite(cpu(switchyard) / cpu(bare))) {
    lines.push(
      `CPU per request at saturation: Switchyard ${thousands(cpu(switchyard))} us, bare forwarder ${thousands(cpu(bare))} us ` +
        `(${fixed(cpu(switchyard) / cpu(bare), 1)}x).`,
    );
  }
  const shared = run.sharedCore ?? [];
  if (shared.length > 0) {
    const ratios = shared.map(sharedCoreRatio);
    const cost = (pick: (round: SharedCoreRound) => Round) => thousands(median(shared.map((round) => pick(round).cpuUsPerRequest)));
    lines.push(
      `Side by side on one core, both at saturation at once: Switchyard serves ${fixed(median(ratios), 3)}x the bare forwarder's requests per CPU-second ` +
        `(median of ${shared.length} rounds, ${fixed(Math.min(...ratios), 3)}-${fixed(Math.max(...ratios), 3)}x). Whatever the host does to the core, it does to both ` +
        `there, so this ratio is steady where the rounds alone swing; but sharing the core raises both processes' CPU per request ` +
        `(bare ${cost((round) => round.bare)} us, Switchyard ${cost((round) => round.switchyard)} us: context switches, cold caches, smaller batches), ` +
        `a different operating point from the rounds alone, so it is reported beside the verdict, not as it.`,
    );
  }
  const others = (['nginx', 'haproxy'] as const).map((id) => byId(run, id)).filter((m) => m?.saturation);
  if (others.length > 0) {
    lines.push(
      `Against the C proxies: ${others
        .map((m) => `${m!.spec.label} ${thousands(m!.saturation!.requestsPerSec)} req/s (Switchyard ${fixed(s / m!.saturation!.requestsPerSec, 2)}x of it)`)
        .join(', ')}.`,
    );
  }
  const queued = byId(run, 'switchyard-c1')?.saturation?.requestsPerSec;
  if (queued) {
    const share = queued / s;
    lines.push(
      `With the product default of one in-flight request per worker (one upstream here, the rest queue in the proxy), ` +
        `Switchyard does ${thousands(queued)} req/s (${fixed(share, 2)}x of concurrency 64)` +
        (share < 0.9 ? ': the cost of serialising on one worker.' : ': the proxy itself, not the queue, is the bottleneck here.'),
    );
  }
  return { met: throughputOk && latencyOk, lines };
}

function placement(run: Run): string {
  const cpus = run.machine.cpus;
  return run.isolation
    ? `The target under test runs alone on CPU ${run.isolation.targetCpu}; the load generator and the upstream share CPU ${run.isolation.loadCpu} (taskset).`
    : `The load generator, the target and the upstream all share the machine's ${cpus} core${cpus === 1 ? '' : 's'}.`;
}

export function markdownSection(run: Run, versions: Record<string, string | undefined>): string {
  const { machine, settings } = run;
  const { met, lines } = verdict(run);
  return `Generated by \`npm run bench -- proxy-overhead\` (\`bench/proxy-overhead.ts\`) on ${run.date.toISOString().slice(0, 16).replace('T', ' ')} UTC.
Re-running replaces this section.

Machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGb} GB, ${machine.kernel}; Node ${machine.node}; ` +
    `${Object.entries(versions).map(([name, version]) => `${name} ${version ?? 'n/a'}`).join(', ')}; load average at start ${machine.loadAverage}.
${placement(run)} Other work (tests, builds) may have been running. Absolute numbers are only indicative; the
ratios between rows of one run are what count.

Setup: one Node upstream process (keep-alive, fixed ~50-byte JSON body) on loopback; every target runs as
${settings.instances} processes of its own in front of it (all started up front, idle while another one is measured), and round r
measures instance r mod ${settings.instances} (the direct row is the one upstream): a Node process's speed is set at its start by what V8 happens to compile and how
(Switchyard processes of one build ran up to 12% apart through their whole lives), so one process is one sample. Each process first runs
${settings.jitWarmupSec} s at saturation, so that V8 has compiled its hot paths before anything is measured (optimisations settle after
some 35,000 requests; until then the compiler threads share the target's core). Then each phase measures all targets in
${settings.rounds} interleaved rounds after ${settings.warmupSec} s of warm-up, ${settings.durationSec} s per measurement, and keeps each target's best round
(highest req/s at saturation, lowest p99 at the fixed rate), so that background load hits every target alike.
At saturation Switchyard and the bare forwarder run back to back in every round, the one that went first going second
in the next; the throughput verdict is the median of their round-by-round ratios (mean against mean and best
against best are also given): on a shared host the same binary's rounds spread by 10-50%, and the best of a few rounds is whichever
minute happened to be quietest, while a back-to-back pair shares its minute. In ${settings.rounds} more rounds the two run
**side by side**, at saturation at the same time on the same core, each under its own ${settings.connections} connections: a ratio
of requests per CPU-second that the host's changing speed cannot move, though at another operating point (see the verdict).
- **Saturation**: autocannon, ${settings.connections} keep-alive connections, each sending its next request as soon as the last is answered.
- **Fixed rate**: open loop (\`bench/lib/paced-load.ts\`): requests leave evenly on a 1 ms clock whether or not earlier
  ones were answered, over up to ${settings.connections} keep-alive connections. The generator writes a prebuilt request on raw
  sockets and frames responses by Content-Length: with Node's http client its own pauses were most of the measured p99
  (25 ms and more against the bare upstream at 3,200 req/s). (autocannon's own rate limit lets each
  connection send its per-second quota back to back and then wait, so half of every second runs at saturation and
  its p99 measures queueing at saturation, not what the proxy adds.)
- Latencies are exact per-request percentiles. \`CPU us/req\` is the user+system CPU time of the target's process(es)
  per response, read from /proc (for the direct row, the upstream's own); \`core busy %\` at the fixed rate is that times the
  achieved rate: how much of its core the target needed. \`steal %\` is the share of the round in which the
  host ran another guest on the target's core instead of this machine (/proc/stat): it shows in no process's CPU time,
  yet it stretches every request.
- **bare http-proxy-3**: \`createProxyServer\` in \`http.createServer\`, keep-alive agent with 64 sockets, \`xfwd\`.
- **Switchyard**: \`proxy/testing.ts\` \`startProxy\` in its own process with the proxy's Node options (\`--no-memory-reducer\`,
  \`PROXY_NODE_ARGS\` in \`lib/ecosystem.ts\`), one pool with the upstream as its only worker, \`LOG_LEVEL=warn\`, \`page\` clients kept alive without a request cap (as for nginx and HAProxy); concurrency 64
  (the overhead row) and 1 (the product default: one in-flight request per single-threaded worker, the rest queue).
- **nginx**: \`worker_processes 1\`, upstream \`keepalive 64\`, \`proxy_http_version 1.1\`, \`Connection ""\`, access log off.
- **HAProxy**: \`nbthread 1\`, \`mode http\`, \`http-reuse always\`, server \`maxconn 64\`, \`option forwardfor\`.

### Saturation (${settings.connections} connections, as fast as possible, best of ${settings.rounds} rounds)

${saturationTable(run)}

${(run.sharedCore ?? []).length > 0 ? `### Side by side: the bare forwarder and Switchyard at once on one core (${settings.connections} connections each)

${sharedCoreTable(run)}

` : ''}### Fixed rate: ${thousands(run.rate)} req/s (${Math.round(settings.rateFraction * 100)}% of the bare forwarder's maximum)

Added latency is relative to the direct run at the same rate.

${rateTable(run)}

### Verdict

${lines.map((line) => `- ${line}`).join('\n')}
- Overall: the issue's targets are ${met ? '**met**' : '**not met**'} in this run.
`;
}
