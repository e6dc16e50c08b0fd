import type { Queryable } from './db.ts';
import type { Pending } from './records.ts';
import type { FleetEvent, FleetEventKind, LaneMinute } from './types.ts';

type PendingEvent = Extract<Pending, { event: FleetEvent }>;

/** `($1, $2), ($3, $4)` for `rows` rows of `width` columns, with per-column casts. */
function valuesList(rows: number, casts: string[]): string {
  const tuples: string[] = [];
  for (let r = 0; r < rows; r++) {
    tuples.push(`(${casts.map((cast, c) => `$${r * casts.length + c + 1}${cast}`).join(', ')})`);
  }
  return tuples.join(', ');
}

async function insertEvents(q: Queryable, events: PendingEvent[]): Promise<void> {
  if (events.length === 0) return;
  // ::text::jsonb: the JSON goes over as text on both drivers (pg would send a JS array as a PG array).
  const casts = ['::timestamptz', '', '', '', '', '::text::jsonb', '::uuid'];
  const params = events.flatMap(({ event: e, detailJson, uid }) => [
    e.at,
    e.kind,
    e.pool ?? null,
    e.worker ?? null,
    e.reason ?? null,
    detailJson,
    uid,
  ]);
  await q.query(
    `INSERT INTO switchyard_events (at, kind, pool, worker, reason, detail, uid) VALUES ${valuesList(events.length, casts)}
     ON CONFLICT (uid) DO NOTHING`,
    params,
  );
}

async function upsertLaneMinutes(q: Queryable, lanes: LaneMinute[]): Promise<void> {
  // One INSERT ... ON CONFLICT may not touch the same row twice: keep the last record per key.
  const latest = new Map(lanes.map((s) => [`${s.minute.getTime()}|${s.lane}|${s.proxy ?? ''}`, s]));
  if (latest.size === 0) return;
  const rows = [...latest.values()];
  const casts = ['::timestamptz', '', '::integer', '::integer', '::float8', '::float8', '::integer', ''];
  const params = rows.flatMap((s) => [s.minute, s.lane, s.requests, s.errors, s.p50Ms, s.p99Ms, s.queuePeak, s.proxy ?? '']);
  await q.query(
    `INSERT INTO switchyard_lane_minutes (minute, lane, requests, errors, p50_ms, p99_ms, queue_peak, proxy)
     VALUES ${valuesList(rows.length, casts)}
     ON CONFLICT (minute, lane, proxy) DO UPDATE SET
       requests = EXCLUDED.requests, errors = EXCLUDED.errors, p50_ms = EXCLUDED.p50_ms,
       p99_ms = EXCLUDED.p99_ms, queue_peak = EXCLUDED.queue_peak`,
    params,
  );
}

export async function writeBatch(q: Queryable, batch: Pending[]): Promise<void> {
  const events: PendingEvent[] = [];
  const lanes: LaneMinute[] = [];
  for (const p of batch) {
    if ('event' in p) events.push(p);
    else lanes.push(p.lane);
  }
  await insertEvents(q, events);
  await upsertLaneMinutes(q, lanes);
}

interface EventRow {
  at: Date;
  kind: FleetEventKind;
  pool: string | null;
  worker: string | null;
  reason: string | null;
  detail: Record<string, unknown> | null;
}

export async function selectEvents(q: Queryable, since: Date, limit: number): Promise<FleetEvent[]> {
  const { rows } = await q.query<EventRow>(
    `SELECT at, kind, pool, worker, reason, detail FROM switchyard_events
     WHERE at >= $1::timestamptz ORDER BY at DESC, id DESC LIMIT $2::integer`,
    [since, limit],
  );
  return rows.reverse().map((r) => {
    const e: FleetEvent = { at: new Date(r.at), kind: r.kind };
    if (r.pool !== null) e.pool = r.pool;
    if (r.worker !== null) e.worker = r.worker;
    if (r.reason !== null) e.reason = r.reason;
    if (r.detail !== null) e.detail = r.detail;
    return e;
  });
}

interface LaneRow {
  minute: Date;
  lane: string;
  requests: number;
  errors: number;
  p50_ms: number;
  p99_ms: number;
  queue_peak: number;
}

/**
 * Per minute and lane, summed over the proxies that recorded it (one per host): requests, errors
 * and queue peaks add up; p99 is the worst proxy's (an upper bound), p50 the mean weighted by
 * requests (percentiles of separate histograms do not combine exactly).
 */
export async function selectLaneStats(q: Queryable, since: Date, lane?: string): Promise<LaneMinute[]> {
  const { rows } = await q.query<LaneRow>(
    `SELECT minute, lane,
       LEAST(sum(requests), 2147483647)::integer AS requests,
       LEAST(sum(errors), 2147483647)::integer AS errors,
       CASE WHEN count(*) = 1 OR sum(requests) = 0 THEN max(p50_ms) ELSE sum(p50_ms * requests) / sum(requests) END AS p50_ms,
       max(p99_ms) AS p99_ms,
       LEAST(sum(queue_peak), 2147483647)::integer AS queue_peak
     FROM switchyard_lane_minutes
     WHERE minute >= $1::timestamptz AND ($2::text IS NULL OR lane = $2::text)
     GROUP BY minute, lane ORDER BY minute, lane`,
    [since, lane ?? null],
  );
  return rows.map((r) => ({
    minute: new Date(r.minute),
    lane: r.lane,
    requests: r.requests,
    errors: r.errors,
    p50Ms: r.p50_ms,
    p99Ms: r.p99_ms,
    queuePeak: r.queue_peak,
  }));
}

export async function deleteOlderThan(q: Queryable, cutoff: Date): Promise<number> {
  const events = await q.query('DELETE FROM switchyard_events WHERE at < $1::timestamptz', [cutoff]);
  const lanes = await q.query('DELETE FROM switchyard_lane_minutes WHERE minute < $1::timestamptz', [cutoff]);
  return events.count + lanes.count;
}
