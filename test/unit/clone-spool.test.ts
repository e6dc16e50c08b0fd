import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CloneSpool, DISK_BACKOFF_MS, MAX_ENTRIES, type CloneSpoolConfig } from '../../proxy/clone-sharing/clone-spool.ts';
import type { Generation } from '../../proxy/clone-sharing/generation.ts';
import { SpoolReader, type ReaderOptions } from '../../proxy/clone-sharing/spool-reader.ts';

// The shared clone spool (proxy/clone-sharing/): generations written from real HTTP answers of an
// in-process "worker" into real files, read back by real HTTP clients through SpoolReaders at
// their own pace. The worker's answer is written piece by piece by the test, and clients pause
// and resume, so that every interleaving is set up without timing.

const PER_TEST = { timeout: 15_000 };
const MiB = 1024 * 1024;
let root: string;
const servers: http.Server[] = [];
before(() => {
  root = mkdtempSync(path.join(tmpdir(), 'switchyard-clone-spool-'));
});
after(() => {
  for (const server of servers) server.close();
  rmSync(root, { recursive: true, force: true });
});

let dirs = 0;
function spoolOf(config: Partial<CloneSpoolConfig> = {}): CloneSpool {
  const spool = new CloneSpool({ dir: path.join(root, `spool-${++dirs}`), ttlSec: 300, maxDiskBytes: 64 * MiB, ...config });
  spool.prepare();
  return spool;
}

async function listening(server: http.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return (server.address() as AddressInfo).port;
}

/** A worker answer the test writes piece by piece, as the proxy receives it (an IncomingMessage). */
interface WorkerAnswer {
  answer: http.IncomingMessage;
  send(bytes: Buffer): Promise<void>;
  end(): void;
  /** the worker dies mid-answer */
  cut(): void;
}

let answerPort = 0;
let nextAnswer: ((res: http.ServerResponse) => void) | undefined;
before(async () => {
  const server = http.createServer((_req, res) => nextAnswer!(res));
  answerPort = await listening(server);
});

async function workerAnswer(status = 200): Promise<WorkerAnswer> {
  const produced = new Promise<http.ServerResponse>((resolve) => (nextAnswer = resolve));
  const request = http.get({ port: answerPort, host: '127.0.0.1', agent: false });
  const res = await produced;
  res.writeHead(status, { 'content-type': 'application/x-git-upload-pack-result', 'x-from': 'worker' });
  res.flushHeaders();
  const [answer] = (await once(request, 'response')) as [http.IncomingMessage];
  return {
    answer,
    send: async (bytes) => {
      if (!res.write(bytes)) await once(res, 'drain');
    },
    end: () => res.end(),
    cut: () => res.socket!.destroy(),
  };
}

/** Starts writing `source` into the generation, as the share stage does for a shareable answer. */
function writeInto(spool: CloneSpool, generation: Generation, source: WorkerAnswer, produced = () => {}): void {
  const headers = ['content-type', 'application/x-git-upload-pack-result', 'x-from', 'worker'];
  generation.writeFrom(source.answer, { status: 200, statusMessage: 'OK', headers, worker: 'w1' }, () => spool.openFile(), produced);
}

/** Waits until the generation has changed so that `condition` holds. */
function until(generation: Generation, condition: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (condition()) return resolve();
    const watcher = () => {
      if (!condition()) return;
      generation.unwatch(watcher);
      resolve();
    };
    generation.watch(watcher);
  });
}

const READER: ReaderOptions = { windowBytes: 64 * 1024, sendTimeoutMs: 60_000, minBytesPerSec: 0, rateWindowMs: 20_000 };

/** A client of a SpoolReader over real HTTP: what it got, and whether the response ended cleanly. */
interface Client {
  res: http.IncomingMessage;
  bytes(): Buffer;
  /** resolves with the body when the response ends complete, rejects when it is cut */
  done: Promise<Buffer>;
}

let readerPort = 0;
let readerFor: { generation: Generation; options: ReaderOptions; cuts: string[] } | undefined;
before(async () => {
  const server = http.createServer((_req, res) => {
    const { generation, options, cuts } = readerFor!;
    new SpoolReader(generation, res, options, { sent: () => {}, cut: (reason) => cuts.push(reason) }).start(['x-reader', 'yes']);
  });
  readerPort = await listening(server);
});

async function read(generation: Generation, options: { paused?: boolean; reader?: ReaderOptions; cuts?: string[] } = {}): Promise<Client> {
  readerFor = { generation, options: options.reader ?? READER, cuts: options.cuts ?? [] };
  const request = http.get({ port: readerPort, host: '127.0.0.1', agent: false });
  const [res] = (await once(request, 'response')) as [http.IncomingMessage];
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
    res.on('close', () => (res.complete ? undefined : reject(new Error('response cut'))));
  });
  done.catch(() => {});
  if (options.paused) res.pause();
  return { res, bytes: () => Buffer.concat(chunks), done };
}

const piece = (index: number, size = 64 * 1024) => Buffer.alloc(size, index % 251);

test('readers at different paces get the worker answer byte for byte; the slowest never holds the generation', PER_TEST, async () => {
  const spool = spoolOf();
  const generation = spool.start('key', true)!;
  const source = await workerAnswer();
  let produced = 0;
  writeInto(spool, generation, source, () => produced++);
  const fast = await read(generation);
  const stalled = await read(generation, { paused: true });
  assert.equal(fast.res.statusCode, 200);
  assert.equal(fast.res.headers['x-from'], 'worker');
  assert.equal(fast.res.headers['x-reader'], 'yes');

  const sent: Buffer[] = [];
  for (let index = 0; index < 8; index++) {
    sent.push(piece(index));
    await source.send(sent[index]);
    if (index === 3) await until(generation, () => generation.written >= 4 * 64 * 1024);
  }
  // a reader that comes mid-way starts from the first byte
  const late = await read(generation);
  // 32 MiB more: far past what the stalled client's socket buffers hold
  for (let index = 8; index < 520; index++) {
    sent.push(piece(index));
    await source.send(sent[index]);
  }
  source.end();
  const whole = Buffer.concat(sent);
  await until(generation, () => generation.state === 'complete');
  assert.equal(produced, 1);
  assert.equal(generation.written, whole.length);
  assert.ok(stalled.bytes().length < whole.length, 'the stalled reader is behind, yet the generation is complete');
  assert.ok((await fast.done).equals(whole));
  assert.ok((await late.done).equals(whole));
  stalled.res.resume();
  assert.ok((await stalled.done).equals(whole));
  assert.equal(spool.find('key'), generation, 'complete and retained: it serves later requests');
  assert.deepEqual(readdirSync(path.join(root, `spool-${dirs}`)), [], 'the file is unlinked as soon as it is open');
});

test('a worker answer cut mid-way fails the generation: its readers are cut, never ended, and the file is dropped', PER_TEST, async () => {
  const spool = spoolOf();
  const generation = spool.start('key', true)!;
  const source = await workerAnswer();
  writeInto(spool, generation, source);
  const cuts: string[] = [];
  const reader = await read(generation, { cuts });
  await source.send(piece(1));
  await until(generation, () => generation.written > 0);
  source.cut();
  await until(generation, () => generation.state === 'failed');
  await assert.rejects(reader.done, /response cut|aborted/);
  assert.match(cuts[0], /shared answer failed/);
  assert.equal(spool.find('key'), undefined, 'a failed generation is never served');
  assert.equal(spool.start('key', true)?.state, 'pending', 'the next request of the key leads a new one');
  await until(generation, () => spool.usage.diskBytes === 0);
});

test('a reader that leaves mid-way takes nothing from the generation or the other readers', PER_TEST, async () => {
  const spool = spoolOf({ ttlSec: 0 });
  const generation = spool.start('key', true)!;
  const source = await workerAnswer();
  writeInto(spool, generation, source);
  const leaving = await read(generation);
  const staying = await read(generation);
  const sent = [piece(0), piece(1)];
  await source.send(sent[0]);
  await until(generation, () => leaving.bytes().length > 0 || generation.written > 0);
  leaving.res.destroy();
  await assert.rejects(leaving.done);
  await source.send(sent[1]);
  source.end();
  assert.ok((await staying.done).equals(Buffer.concat(sent)));
  await until(generation, () => generation.state === 'complete');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(spool.usage, { diskBytes: 0, entries: 0, waiting: 0 }, 'no reader left and nothing retained: the file is closed');
});

test('an answer that is not shared is declined: nothing kept, and the key is free', PER_TEST, () => {
  const spool = spoolOf();
  const generation = spool.start('key', true)!;
  let changes = 0;
  generation.watch(() => changes++);
  generation.decline('404');
  assert.equal(generation.state, 'declined');
  assert.equal(changes, 1, 'its waiting followers learn it');
  assert.equal(spool.find('key'), undefined);
  assert.deepEqual(spool.usage, { diskBytes: 0, entries: 0, waiting: 0 });
});

/** A generation of `key` written whole with `bytes` bytes. */
async function completed(spool: CloneSpool, key: string, bytes: number, retain = true): Promise<Generation> {
  const generation = spool.start(key, retain)!;
  const source = await workerAnswer();
  writeInto(spool, generation, source);
  await source.send(Buffer.alloc(bytes, 1));
  source.end();
  await until(generation, () => generation.state !== 'writing');
  return generation;
}

test('TTL: a completed generation serves until it expires; ttlSec 0 and retain=false keep none', PER_TEST, async () => {
  const spool = spoolOf({ ttlSec: 10 });
  const kept = await completed(spool, 'kept', 1000);
  assert.equal(spool.find('kept'), kept);
  assert.equal(spool.find('kept', Date.now() + 11_000), undefined, 'past its TTL');
  await completed(spool, 'swept', 1000);
  spool.expire(Date.now() + 11_000);
  assert.equal(spool.usage.entries, 0);
  assert.equal(spool.usage.diskBytes, 0, 'expired with no reader: its file is closed');

  const once = await completed(spool, 'once', 1000, false);
  assert.equal(once.state, 'complete');
  assert.equal(spool.find('once'), undefined, 'retain=false: dropped as it completes');
  const noTtl = spoolOf({ ttlSec: 0 });
  await completed(noTtl, 'k', 1000);
  assert.equal(noTtl.find('k'), undefined, 'ttlSec 0: only concurrent requests share');
});

test('budget: least recently used completed generations go first; in-flight ones are never evicted', PER_TEST, async () => {
  const spool = spoolOf({ maxDiskBytes: 3000 });
  await completed(spool, 'a', 1000);
  await completed(spool, 'b', 1000);
  await completed(spool, 'c', 1000);
  assert.equal(spool.usage.diskBytes, 3000);
  spool.find('a'); // a is now the most recent: b goes first
  await completed(spool, 'd', 1000);
  assert.equal(spool.find('b'), undefined);
  assert.ok(spool.find('a') && spool.find('c') && spool.find('d'));
  assert.equal(spool.usage.diskBytes, 3000);

  // an evicted generation's bytes count until its last reader lets go (held as a reader holds it)
  const c = spool.find('c')!;
  c.hold();
  spool.find('a');
  spool.find('d');
  await completed(spool, 'e', 1000); // c is the least recent now
  assert.equal(spool.find('c'), undefined);
  assert.equal((await c.read(0, 10_000)).length, 1000, 'c is still read from its open file');
  assert.equal(spool.find('a'), undefined, "c's bytes still count: the next least recent went to make room");
  assert.ok(spool.find('d') && spool.find('e'));
  assert.equal(spool.usage.diskBytes, 3000);
  c.letGo();
  assert.equal(spool.usage.diskBytes, 2000);

  // generations being written fill the budget: no room for a new key, and one that outgrows it fails
  const full = spoolOf({ maxDiskBytes: 2000 });
  const writing = full.start('w', true)!;
  const source = await workerAnswer();
  writeInto(full, writing, source);
  await source.send(Buffer.alloc(2000, 1));
  await until(writing, () => writing.written === 2000);
  assert.equal(full.start('other', true), undefined, 'in-flight generations alone fill the budget: the new key goes alone');
  await source.send(Buffer.alloc(10, 1));
  await until(writing, () => writing.state === 'failed');
  assert.equal(writing.failure, 'clone spool full');
});

test('entries are bounded: with MAX_ENTRIES generations in flight a new key goes alone', PER_TEST, () => {
  const spool = spoolOf();
  for (let index = 0; index < MAX_ENTRIES; index++) spool.start(`pending-${index}`, true);
  assert.equal(spool.start('one more', true), undefined, 'all in flight: the new key goes alone');
});

test('prepare empties the spool directory an earlier process left', PER_TEST, () => {
  const dir = path.join(root, 'leftovers');
  mkdirSync(path.join(dir, 'nested'), { recursive: true });
  writeFileSync(path.join(dir, '123-1-abc'), 'partial answer');
  new CloneSpool({ dir, ttlSec: 300, maxDiskBytes: MiB }).prepare();
  assert.deepEqual(readdirSync(dir), []);
});

test('a disk that fails a spool write: the answer goes on from memory for its readers, new keys go alone a while', PER_TEST, async () => {
  const spool = spoolOf();
  const generation = spool.start('key', true)!;
  rmSync(path.join(root, `spool-${dirs}`), { recursive: true }); // the spool file cannot be created
  const source = await workerAnswer();
  writeInto(spool, generation, source);
  const reader = await read(generation);
  await source.send(piece(1));
  await source.send(piece(2));
  source.end();
  const body = await reader.done;
  assert.ok(body.equals(Buffer.concat([piece(1), piece(2)])), 'the reader got the whole answer, byte for byte');
  assert.equal(generation.state, 'complete');
  assert.match(generation.failure!, /spool file/);
  assert.equal(spool.find('key'), undefined, 'an answer held in memory is not kept for later requests');
  const failedAt = Date.now();
  assert.equal(spool.start('other', true), undefined, 'right after the failure a new key goes alone');
  assert.equal(spool.start('other', true, failedAt + DISK_BACKOFF_MS.first - 100), undefined);
  const retry = spool.start('other', true, failedAt + DISK_BACKOFF_MS.first + 1000);
  assert.equal(retry?.state, 'pending', 'after the backoff one may try again');
  spool.diskFailed(failedAt + DISK_BACKOFF_MS.first + 2000);
  assert.equal(spool.start('third', true, failedAt + DISK_BACKOFF_MS.first * 2 + 2000), undefined, 'a second failure doubles the wait');
  assert.ok(spool.start('third', true, failedAt + DISK_BACKOFF_MS.first * 3 + 3000), 'and it ends');
});
