// Number and time formatting for the dashboard.

export function bytes(value) {
  if (value == null) return '–';
  if (value < 1048576) return value === 0 ? '0 B' : `${Math.max(1, Math.round(value / 1024))} KB`;
  const mb = value / 1048576;
  return mb >= 1024 ? `${(mb / 1024).toFixed(2)} GB` : `${mb.toFixed(mb < 10 ? 1 : 0)} MB`;
}

export function duration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return '–';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function count(value) {
  return value == null ? '–' : Number(value).toLocaleString('en-US');
}

export function rate(value) {
  if (value == null) return '–';
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

export function ms(value) {
  if (value == null) return '–';
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`;
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ms`;
}

export function percent(fraction) {
  if (!fraction) return '0%';
  return `${(fraction * 100).toFixed(fraction < 0.01 ? 2 : 1)}%`;
}

export function clock(iso) {
  return new Date(iso).toLocaleTimeString('en-GB', { hour12: false });
}

/** Time or requests until a worker's next recycle, whichever comes first (0 limits mean none). */
export function nextRecycle(worker) {
  if (worker.pendingRecycle) return { text: `queued (${worker.pendingRecycle})`, urgent: true };
  const { maxRequests, maxAgeSec } = worker.limits;
  const requestsLeft = maxRequests > 0 && worker.served != null ? Math.max(0, maxRequests - worker.served) : null;
  const secondsLeft = maxAgeSec > 0 && worker.uptimeSec != null ? Math.max(0, maxAgeSec - worker.uptimeSec) : null;
  const parts = [];
  if (secondsLeft != null) parts.push(`in ${duration(secondsLeft)}`);
  if (requestsLeft != null) parts.push(`${count(requestsLeft)} req`);
  return { text: parts.length ? parts.join(' · ') : 'no limit', urgent: (requestsLeft != null && requestsLeft < 50) || (secondsLeft != null && secondsLeft < 60) };
}
