import type { RequestClass, SwitchyardConfig } from '../../lib/config.ts';
import type { ThrottledLog } from '../../lib/throttled-log.ts';
import type { ClientFraming, Exchange } from '../exchange.ts';
import { RequestBody, type BodyFailure, type BodyStore } from '../request-body.ts';
import { sendError } from '../responses.ts';
import type { Refusal } from './validate.ts';

/** Runs a callback of an exchange inside the forwarder's containment boundary. */
type Contain = (exchange: Exchange, run: () => void) => void;

/**
 * Stage "body": the request body is read before a worker is picked (nginx's proxy_request_buffering),
 * into memory and then a temp file up to the class's bodyBufferBytes, under a timeout and a minimum
 * rate, so that a client that trickles its body never holds a worker. A longer body streams on
 * from the client once a worker is found, under the same limits.
 */
export class BodyStage {
  constructor(
    private readonly bodies: BodyStore,
    private readonly config: SwitchyardConfig,
    private readonly faults: ThrottledLog,
    private readonly contain: Contain,
  ) {}

  /** 413 for a body whose declared length is over the limit, before a byte of it is read. */
  tooLarge(framing: ClientFraming): Refusal | undefined {
    const maxBody = this.config.proxy.limits.maxBodyBytes;
    return maxBody > 0 && framing.declaredLength > maxBody ? { status: 413, reason: 'request body too large' } : undefined;
  }

  /**
   * Reads the body of an exchange that has one, then calls `read` with the number of bytes held
   * whole (undefined: the rest is still streaming from the client). A failure answers the client.
   */
  read(exchange: Exchange, requestClass: RequestClass, expectsContinue: boolean, read: (bufferedBytes: number | undefined) => void): void {
    const { req, res } = exchange;
    const policy = this.config.proxy.clients[requestClass];
    const body = new RequestBody(
      this.bodies,
      req,
      { maxBytes: this.config.proxy.limits.maxBodyBytes, bufferBytes: policy.bodyBufferBytes, timeoutMs: policy.requestTimeoutMs },
      exchange.client,
    );
    exchange.body = body;
    const refuse = (failure: BodyFailure) => {
      this.faults.write({ url: req.url, client: exchange.clientIp, status: failure.status }, failure.reason);
      const retry: Record<string, string> = failure.status === 503 ? { 'retry-after': '1' } : {};
      sendError(res, failure.status, failure.reason, { connection: 'close', 'x-switchyard-lane': exchange.lane, ...retry });
    };
    // While streaming to a worker: the answer if it can still be given, and the connection goes.
    body.onLateFailure = (failure) =>
      this.contain(exchange, () => {
        refuse(failure);
        req.socket.destroy();
      });
    if (expectsContinue) res.writeContinue();
    body.start((failure) =>
      this.contain(exchange, () => {
        if (failure) return refuse(failure);
        exchange.streamChunked = exchange.framing.chunked && !body.complete;
        read(body.complete ? body.received : undefined);
      }),
    );
  }
}
