import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { StdoutSink } from '../../lib/stdout-sink.ts';
import { waitFor } from '../helpers/http.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-sink-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('lines reach the descriptor, and flushSync writes what is still buffered', () => {
  const file = path.join(dir, 'out.log');
  const fd = openSync(file, 'w');
  const sink = new StdoutSink({ fd });
  for (let i = 0; i < 100; i++) sink.write(`line ${i}\n`);
  sink.flushSync();
  closeSync(fd);
  assert.equal(readFileSync(file, 'utf8').split('\n').filter(Boolean).length, 100);
  assert.equal(sink.gone, undefined);
});

test('once a write fails, every later line is dropped and counted, and flushSync does not throw', async () => {
  const file = path.join(dir, 'read-only');
  writeFileSync(file, '');
  const fd = openSync(file, 'r'); // writing to it fails (EBADF), as a pipe without reader fails with EPIPE
  const sink = new StdoutSink({ fd });
  sink.write('first\n');
  await waitFor(() => sink.gone !== undefined, 'the asynchronous write reports its failure');
  assert.equal(sink.gone, 'EBADF');
  sink.write('second\n');
  sink.write('third\n');
  assert.equal(sink.dropped, 2);
  assert.doesNotThrow(() => sink.flushSync());
  closeSync(fd);
});
