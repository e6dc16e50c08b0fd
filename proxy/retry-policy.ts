/**
 * What happens after a send to a worker fails, as a pure policy (HAProxy's vocabulary: `retries`,
 * `retry-on conn-failure`, `option redispatch`). The forwarder applies the verdict.
 */

/** Failures that reached no worker process: nothing ran, so the request can go to another. */
const CONN_FAILURES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNECT_TIMEOUT']);
/** Methods whose repetition the client cannot tell from one request (RFC 9110 9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export interface SendFailure {
  /** the error code (ECONNREFUSED...) or message */
  code: string;
  method: string;
  /** the worker had sent response headers before it failed */
  responded: boolean;
  /** the worker connection had carried a response before this send (a keep-alive reuse) */
  reusedConnection: boolean;
  /** the request can be sent again: the client is still there, and its body (if any) is held whole */
  replayable: boolean;
  /** sends of this request so far, this one included */
  sends: number;
  /** workers in the pool: a refused connect is redispatched at most once to each */
  workers: number;
  /** a reused-connection reset was retried already */
  resetRetried: boolean;
}

export interface RetryVerdict {
  /** take the worker out of rotation until its health check passes */
  eject: boolean;
  /** send again, through the balancer: `conn-failure` to another worker, `reused-reset` once */
  retry: 'conn-failure' | 'reused-reset' | undefined;
}

/**
 * A refused connect reached nothing: the worker is ejected and the request redispatched (each
 * refusal ejects one worker, which bounds the loop). A reset of a reused keep-alive socket before
 * any response is the race of a worker closing an idle connection: retried once, idempotent
 * methods only, and the worker stays. A worker that failed while it worked on the request is
 * ejected, and the request is not replayed: it may be what killed the worker.
 */
export function afterSendFailure(failure: SendFailure): RetryVerdict {
  const refused = CONN_FAILURES.has(failure.code);
  const reusedReset = !refused && failure.reusedConnection && !failure.responded;
  const eject = refused || (!reusedReset && !failure.responded);
  if (failure.responded || !failure.replayable) return { eject, retry: undefined };
  if (refused && failure.sends <= failure.workers) return { eject, retry: 'conn-failure' };
  if (reusedReset && IDEMPOTENT.has(failure.method) && !failure.resetRetried) return { eject, retry: 'reused-reset' };
  return { eject, retry: undefined };
}
