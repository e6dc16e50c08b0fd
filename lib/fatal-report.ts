/**
 * A process of the stack telling the supervisor why it is about to exit, over PM2's bus: the
 * process sends `{ type: 'process:msg', data }` on its IPC channel, PM2 publishes it, and the
 * supervisor records a fleet event. Outside PM2 there is no channel and nothing is sent.
 */
export const FATAL_REPORT = 'switchyard:fatal';

export interface FatalReport {
  kind: typeof FATAL_REPORT;
  /** the app's pool and instance, for a worker */
  pool?: string;
  index?: number;
  /** the one line the process logged as fatal */
  message: string;
  detail: Record<string, unknown>;
}

/** Resolves once the report is handed to PM2, or after timeoutMs: it never holds an exit up for long. */
export function sendFatalReport(report: Omit<FatalReport, 'kind'>, timeoutMs = 1000): Promise<void> {
  if (!process.send || !process.connected) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    try {
      process.send!({ type: 'process:msg', data: { ...report, kind: FATAL_REPORT } }, undefined, {}, done);
    } catch {
      done(); // the channel closed meanwhile
    }
  });
}

const MAX_MESSAGE_CHARS = 1000;

/** A bus message's data as a FatalReport, or undefined when it is not one (anything may arrive on the bus). */
export function parseFatalReport(data: unknown): FatalReport | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const fields = data as Record<string, unknown>;
  if (fields.kind !== FATAL_REPORT || typeof fields.message !== 'string') return undefined;
  return {
    kind: FATAL_REPORT,
    pool: typeof fields.pool === 'string' ? fields.pool : undefined,
    index: Number.isInteger(fields.index) ? (fields.index as number) : undefined,
    message: fields.message.slice(0, MAX_MESSAGE_CHARS),
    detail: typeof fields.detail === 'object' && fields.detail !== null ? (fields.detail as Record<string, unknown>) : {},
  };
}
