import type http from 'node:http';
import type { Lane, LaneConfig, ProxyConfig } from '../../lib/config.ts';
import type { Logger } from '../../lib/log.ts';
import { addProxyHeaders, type Exchange } from '../exchange.ts';
import type { BodyStore } from '../request-body.ts';
import { sendError } from '../responses.ts';
import type { CloneCacheCounts, CloneCacheResult } from './clone-cache-counts.ts';
import { cloneKeyOf, type CloneVcs } from './clone-key.ts';
import type { CloneSpool } from './clone-spool.ts';
import type { Generation } from './generation.ts';
import { SpoolReader } from './spool-reader.ts';

/** The parts of the request the key is made of, besides its headers and body. */
export interface ShareRequest {
  method: string;
  path: string;
  query: string;
}

/** Runs a callback of an exchange inside the forwarder's containment boundary. */
type Contain = (exchange: Exchange, run: () => void) => void;

/** what a shareable answer is: a whole clone in the protocol's own content type */
const SHAREABLE_TYPE = /^application\/(x-git-upload-pack-result|mercurial-)/i;

function shareable(answer: http.IncomingMessage): boolean {
  const type = answer.headers['content-type'];
  return answer.statusCode === 200 && typeof type === 'string' && SHAREABLE_TYPE.test(type);
}

/** a follower whose generation gave no shareable answer tries once more to share before it goes alone */
const REENTRIES = 1;

/**
 * Stage "share" (clone and bot lanes, after "body", before "acquire"): identical clone requests
 * are answered from one worker answer. The first of a key leads a generation and goes on to a
 * worker as any request; a shareable answer (200, the protocol's content type) is written to a
 * spool file at the worker's speed while the leader and every follower read it at their own pace
 * (spool-reader.ts). Followers wait for the generation's head without a slot or a queue place; a
 * completed generation serves identical requests within the TTL. What cannot be shared goes alone.
 */
export class ShareStage {
  constructor(
    private readonly spool: CloneSpool,
    private readonly counts: CloneCacheCounts,
    private readonly bodies: BodyStore,
    private readonly config: ProxyConfig,
    private readonly lanes: Record<Lane, LaneConfig>,
    private readonly contain: Contain,
    private readonly log: Logger,
  ) {}

  /** Sharing is on, and for this lane. */
  appliesTo(lane: Lane): boolean {
    return this.config.cloneSharing.enabled && (lane === 'clone' || lane === 'bot');
  }

  /** Calls `alone` when the exchange goes to a worker (by itself or as a generation's leader); answers it otherwise. */
  enter(exchange: Exchange, request: ShareRequest, alone: () => void): void {
    this.bodyOf(exchange, (body) =>
      this.contain(exchange, () => {
        if (exchange.res.destroyed) return;
        const key = cloneKeyOf(
          { ...request, headers: exchange.clientHeaders, body },
          { maxDecodedBytes: this.config.cloneSharing.maxDecodedBodyBytes },
        );
        if (!key) return alone();
        if (!key.share) return this.goAlone(exchange, key.vcs, alone);
        this.join(exchange, key.vcs, key.key, key.retain, REENTRIES, alone);
      }),
    );
  }

  /**
   * The request body whole, for the key: undefined without one, or when it is still streaming or
   * larger than the key may read. Its copy takes room in the request bodies' memory budget for as
   * long as the key is made (none left: undefined too).
   */
  private bodyOf(exchange: Exchange, then: (body: Buffer | undefined) => void): void {
    const body = exchange.body;
    if (!body) return then(undefined);
    const size = body.received;
    if (!body.complete || size > this.config.cloneSharing.maxDecodedBodyBytes || !this.bodies.reserveMemory(size)) return then(undefined);
    const parts: Buffer[] = [];
    const stream = body.open();
    stream.on('data', (chunk: Buffer) => parts.push(chunk));
    stream.on('error', () => {
      this.bodies.releaseMemory(size);
      then(undefined);
    });
    stream.on('end', () => {
      try {
        then(Buffer.concat(parts));
      } finally {
        this.bodies.releaseMemory(size);
      }
    });
  }

  private join(exchange: Exchange, vcs: CloneVcs, key: string, retain: boolean, reentries: number, alone: () => void): void {
    const found = this.spool.find(key);
    if (found?.state === 'complete') return this.serve(exchange, vcs, found, 'hit');
    if (found?.state === 'writing') return this.serve(exchange, vcs, found, 'coalesced');
    if (found) return this.follow(exchange, vcs, found, () => this.join(exchange, vcs, key, retain, reentries - 1, alone), reentries > 0 ? undefined : alone);
    const generation = this.spool.start(key, retain);
    if (!generation) return this.goAlone(exchange, vcs, alone);
    this.lead(exchange, vcs, generation, alone);
  }

  private mark(exchange: Exchange, vcs: CloneVcs, result: CloneCacheResult): void {
    exchange.cloneCache = result;
    this.counts.counted(vcs, result);
  }

  private goAlone(exchange: Exchange, vcs: CloneVcs, alone: () => void): void {
    this.mark(exchange, vcs, 'bypass');
    alone();
  }

  /** The exchange goes to a worker for the generation; a shareable answer is taken over when it comes. */
  private lead(exchange: Exchange, vcs: CloneVcs, generation: Generation, alone: () => void): void {
    this.mark(exchange, vcs, 'miss');
    exchange.takeover = {
      take: (answer, headers, worker, produced) => {
        if (generation.state !== 'pending') return false;
        if (!shareable(answer)) {
          generation.decline(`the worker answered ${answer.statusCode} ${answer.headers['content-type'] ?? ''}`);
          return false;
        }
        generation.writeFrom(answer, { status: answer.statusCode!, statusMessage: answer.statusMessage, headers, worker }, () => this.spool.openFile(), produced);
        this.read(exchange, vcs, generation, false);
        return true;
      },
    };
    // answered without a takeover (an error, a refusal), or the client left first: the followers go their own way
    exchange.res.once('close', () => generation.decline('the leader got no shareable answer'));
    alone();
  }

  /**
   * Waits for the generation's head, bounded in number (the lane's queue) and in time (what the
   * leader may take: its queue wait and its lane's response timeout). No shareable answer: once
   * more `retry`, then `alone` (undefined: retry it is).
   */
  private follow(exchange: Exchange, vcs: CloneVcs, generation: Generation, retry: () => void, alone: (() => void) | undefined): void {
    const pool = exchange.pool;
    if (generation.waiters >= pool.config.queue.max) {
      this.mark(exchange, vcs, 'coalesced');
      return sendError(exchange.res, 503, 'too many identical clones waiting', this.errorHeaders(exchange, pool.retryAfterSec));
    }
    generation.waiters++;
    const lane = this.lanes[exchange.lane];
    const waitMs = pool.config.queue.timeoutMs + (lane.responseTimeoutMs || this.config.upstream.responseTimeoutMs);
    const stop = () => {
      generation.waiters--;
      clearTimeout(timer);
      generation.unwatch(onChange);
      exchange.res.off('close', stop);
    };
    const onChange = () =>
      this.contain(exchange, () => {
        if (generation.state === 'pending') return;
        stop();
        if (generation.state === 'writing' || generation.state === 'complete') return this.serve(exchange, vcs, generation, 'coalesced');
        if (alone) this.goAlone(exchange, vcs, alone);
        else retry();
      });
    const timer = setTimeout(
      () =>
        this.contain(exchange, () => {
          stop();
          this.mark(exchange, vcs, 'coalesced');
          sendError(exchange.res, 504, 'the shared clone did not start in time', this.errorHeaders(exchange));
        }),
      waitMs,
    );
    generation.watch(onChange);
    exchange.res.once('close', stop);
  }

  private errorHeaders(exchange: Exchange, retryAfterSec?: number): Record<string, string> {
    const headers: Record<string, string> = { 'x-switchyard-lane': exchange.lane, 'x-switchyard-clone-cache': exchange.cloneCache! };
    if (exchange.closeConnection) headers.connection = 'close';
    if (retryAfterSec !== undefined) headers['retry-after'] = String(retryAfterSec);
    return headers;
  }

  /** Answers the exchange from the generation: no worker slot, no queue place. */
  private serve(exchange: Exchange, vcs: CloneVcs, generation: Generation, result: CloneCacheResult): void {
    this.mark(exchange, vcs, result);
    this.read(exchange, vcs, generation, true);
  }

  private read(exchange: Exchange, vcs: CloneVcs, generation: Generation, countServed: boolean): void {
    const head = generation.head!;
    exchange.worker = head.worker;
    const streaming = this.config.streaming;
    const reader = new SpoolReader(
      generation,
      exchange.res,
      { windowBytes: streaming.responseWindowBytes, sendTimeoutMs: streaming.sendTimeoutMs, minBytesPerSec: streaming.minBytesPerSec, rateWindowMs: streaming.rateWindowMs },
      {
        sent: countServed ? (bytes) => this.counts.served(vcs, bytes) : () => {},
        cut: (reason) => {
          exchange.error = reason;
          this.log.warn({ url: exchange.req.url, client: exchange.clientIp, worker: head.worker, err: reason }, 'shared clone answer cut');
        },
      },
    );
    reader.start(addProxyHeaders([], exchange, this.config.debugHeaders ? head.worker : undefined));
  }
}
