import type http from 'node:http';
import type { Socket } from 'node:net';
import type { CidrSet } from '../lib/cidr.ts';
import type { Lane, RequestClass, SwitchyardConfig } from '../lib/config.ts';
import type { Logger } from '../lib/log.ts';
import type { Classifier } from './classify.ts';
import { splitUrl } from './classify.ts';
import type { ConnectionTracker, TrackedConnection } from './connections.ts';
import { containRequest, containSocket } from './containment.ts';
import { responseOnUpgradeSocket } from './tunnel.ts';
import { clientFraming, createExchange, type Exchange, type Route } from './exchange.ts';
import type { Forwarder } from './forwarder.ts';
import { sendError } from './responses.ts';
import type { createStaticHandler } from './static.ts';
import { upstreamHeaders } from './upstream-headers.ts';
import type { ShareStage } from './clone-sharing/share-stage.ts';
import type { BodyStage } from './stages/body.ts';
import { fairShareOf, identifyClient } from './stages/client.ts';
import { serveEndpoint } from './stages/endpoints.ts';
import type { RequestRecorder } from './stages/record.ts';
import { reserveUpgradePlace } from './stages/route.ts';
import { acceptedUpgrade, isRefusal, validateRequest, type Refusal } from './stages/validate.ts';

export interface RequestPathParts {
  config: SwitchyardConfig;
  log: Logger;
  trusted: CidrSet;
  connections: ConnectionTracker;
  classifier: Classifier;
  routes: Record<Lane, Route>;
  serveStatic: ReturnType<typeof createStaticHandler>;
  body: BodyStage;
  share: ShareStage;
  forwarder: Forwarder;
  recorder: RequestRecorder;
  /** the proxy is shutting down: /healthz fails, upgrades are refused, connections close */
  draining: () => boolean;
  /** Upgrade protocols passed to workers (proxy.upgrades.protocols) */
  upgradeProtocols: ReadonlySet<string>;
}

/**
 * The request path, as ordered stages. Each is a module with one job; a stage either answers the
 * request (and the path ends there) or hands what it learned to the next.
 *
 *   admit      stages/admit.ts      per connection, before the parser: PROXY protocol, connection limits
 *   turn       connections.ts       one request at a time per connection (pipelining), keep-alive policy
 *   validate   stages/validate.ts   sizes, target, Host, Expect, upgrade offers
 *   endpoints  stages/endpoints.ts  /healthz, internal paths
 *   client     stages/client.ts     who the client is (trusted X-Forwarded-For), its fair-share key
 *   classify   classify.ts          static, browser, page, clone or bot
 *   static     static.ts            static files, from disk, never a worker
 *   route      stages/route.ts      lane to pool, balancer and priority; upgrade places
 *   body       stages/body.ts       the body read before a worker is picked (memory, temp file)
 *   share      clone-sharing/       identical clones answered from one worker answer (clone and bot lanes)
 *   acquire    pool.ts              a slot on a worker now, or in the pool's fair queue
 *   send       forwarder.ts         to the worker; retry-policy.ts after a failed send
 *   relay      response-relay.ts    the response back: window, spool, then the client's pace
 *   record     stages/record.ts     stats and the log line, however the request ended
 */
export class RequestPath {
  private inFlight = 0;

  constructor(private parts: RequestPathParts) {}

  /** the parts requests are handled with now */
  get current(): RequestPathParts {
    return this.parts;
  }

  /**
   * A reload: requests from now on are handled with these parts, all of them at once. A request
   * already on its way keeps the parts it started with (handle reads them once).
   */
  replaceParts(parts: RequestPathParts): void {
    this.parts = parts;
  }

  /** requests being answered now (tunnels not included) */
  get inflight(): number {
    return this.inFlight;
  }

  /** A request from Node's parser: it waits for its turn on its connection. */
  onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const { connections, recorder } = this.parts;
    const connection = connections.get(req.socket);
    const handle = () => this.start(req, res, undefined, connection);
    if (!connections.inTurn(connection, handle)) {
      sendError(res, 503, 'too many pipelined requests', { connection: 'close', 'retry-after': '1' });
      recorder.refused(connection?.requestClass ?? 'page', req, res, 503, identifyClient(req, this.parts.trusted, connection).ip);
    }
  }

  /**
   * An upgrade offer goes the way every request goes, on a response object of its own socket, in
   * its turn: one pipelined behind a request still in flight waits until that one is answered.
   */
  onUpgrade(req: http.IncomingMessage, socket: Socket, head: Buffer): void {
    const { connections, log } = this.parts;
    const connection = connections.get(socket);
    const handle = () => containSocket(log, socket, () => this.start(req, responseOnUpgradeSocket(req, socket), { socket, head }, connection));
    // Past maxPipelined the answers owed before it still go out; this one gets none.
    if (!connections.inTurn(connection, handle) && connection && !connections.closeWhenAnswered(connection)) socket.destroy();
  }

  /** A WebSocket handshake succeeded: no longer a request in flight; its 101 is recorded. */
  tunnelOpened(exchange: Exchange): void {
    const { connections, recorder } = this.parts;
    exchange.tunnelled = true;
    this.inFlight--;
    connections.requestFinished(connections.get(exchange.req.socket));
    connections.upgraded(exchange.req.socket);
    recorder.ended(exchange.lane, exchange.req, undefined, 101, exchange.startedAt, 0, exchange.clientIp, exchange);
  }

  /** Every request, however it is answered, is in flight on its connection until its response closes. */
  private start(req: http.IncomingMessage, res: http.ServerResponse, upgradeOffer: Exchange['upgrade'], connection: TrackedConnection | undefined): void {
    // Its turn came after the client left, or after a response that closes the connection (Node
    // then never gives the socket to the responses queued behind it): nothing to answer or hold.
    if (req.socket.destroyed || !res.socket) return;
    const { connections, log } = this.parts;
    connections.requestStarted(connection);
    // replaced by a successor: every answer, the proxy's own included, says Connection: close
    if (connections.isRetiring) res.shouldKeepAlive = false;
    containRequest(log, req, res, () => this.handle(req, res, upgradeOffer, connection));
    // after handle's own close listener: finishing may start the connection's next pipelined request
    res.once('close', () => connections.requestFinished(connection));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, upgradeOffer: Exchange['upgrade'], connection: TrackedConnection | undefined): void {
    const parts = this.parts;
    const { config, connections, classifier, forwarder, recorder, trusted } = parts;
    const startedAt = performance.now();
    const sentBefore = recorder.sentSoFar(req);
    // set once the request is classified and counted in flight; answers before that get only their access log line
    let counted: RequestClass | undefined;
    let clientIp: string | undefined;
    let exchange: Exchange | undefined;
    res.on('close', () => {
      const status = res.writableFinished ? res.statusCode : 499;
      if (counted === undefined) {
        return recorder.answeredEarly(req, res, status, startedAt, sentBefore, () => clientIp ?? identifyClient(req, trusted, connection).ip);
      }
      if (exchange?.upgrade && exchange.tunnelled) return; // accounted for when the tunnel opened
      this.inFlight--;
      if (exchange) {
        forwarder.clientClosed(exchange);
        exchange.body?.release();
      }
      recorder.ended(counted, req, res, status, startedAt, sentBefore, clientIp!, exchange);
    });
    const valid = validateRequest(req, config.proxy.limits);
    if (isRefusal(valid)) return refuse(res, valid, true);
    if (serveEndpoint(valid.path, res, config.proxy.internalPaths, parts.draining())) return;
    const framing = clientFraming(req.headers);
    let upgrade: Exchange['upgrade'];
    if (upgradeOffer) {
      const accepted = acceptedUpgrade(req, parts.upgradeProtocols, framing.hasBody);
      if (typeof accepted !== 'boolean') return refuse(res, accepted, true);
      if (accepted) upgrade = upgradeOffer;
    }

    const client = identifyClient(req, trusted, connection);
    clientIp = client.ip;
    const { path, query } = splitUrl(valid.path);
    const requestClass = classifier.classify({ method: req.method ?? 'GET', path, query, headers: req.headers, clientIp: client.ip });
    if (upgrade && requestClass === 'static') return sendError(res, 404, 'no WebSocket endpoint under the static prefix');
    if (upgrade && parts.draining()) return sendError(res, 503, 'shutting down', { 'retry-after': '1' });
    const closeConnection = connections.classified(connection, requestClass) || upgradeOffer !== undefined;
    counted = requestClass;
    this.inFlight++;
    const tooLarge = parts.body.tooLarge(framing);
    if (tooLarge) return refuse(res, tooLarge, true);

    if (requestClass === 'static') {
      if (closeConnection) res.setHeader('connection', 'close');
      res.setHeader('x-switchyard-lane', 'static');
      return parts.serveStatic(req, res);
    }
    const route = parts.routes[requestClass];
    const fairShare = fairShareOf(req, client, requestClass, classifier, trusted);
    if (upgrade) {
      const full = reserveUpgradePlace(route, fairShare, upgrade.socket);
      if (full) return sendError(res, full.status, full.reason, { 'retry-after': '1', 'x-switchyard-lane': route.lane });
    }
    const ready = (exchange = createExchange({ req, res, route, clientIp: client.ip, client: fairShare, closeConnection, framing, startedAt, upgrade }));
    const clientHeaders = req.headers;
    if (!framing.hasBody) {
      req.headers = upstreamHeaders(clientHeaders, client, { upgrade: upgrade !== undefined });
      return upgrade ? forwarder.forward(ready) : this.toWorker(parts, ready, valid.path, path);
    }
    parts.body.read(ready, requestClass, valid.expectsContinue, (bufferedBodyBytes) => {
      req.headers = upstreamHeaders(clientHeaders, client, { bufferedBodyBytes });
      this.toWorker(parts, ready, valid.path, path);
    });
  }

  /** Stage "share" for the lanes it applies to, then "acquire" and "send" for what goes to a worker. */
  private toWorker(parts: RequestPathParts, exchange: Exchange, target: string, path: string): void {
    const { forwarder, share } = parts;
    if (!share.appliesTo(exchange.lane)) return forwarder.forward(exchange);
    const mark = target.indexOf('?');
    const request = { method: exchange.req.method ?? 'GET', path, query: mark < 0 ? '' : target.slice(mark + 1) };
    share.enter(exchange, request, () => forwarder.forward(exchange));
  }
}

function refuse(res: http.ServerResponse, refusal: Refusal, closeConnection: boolean): void {
  sendError(res, refusal.status, refusal.reason, closeConnection ? { connection: 'close' } : {});
}
