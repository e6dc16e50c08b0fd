import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { PROXY_NODE_ARGS } from '../../lib/ecosystem.ts';

test("this Node accepts the proxy's options (a misspelt V8 flag would stop the proxy from starting)", async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [...PROXY_NODE_ARGS, '-e', 'console.log("started")']);
  assert.equal(stdout.trim(), 'started');
});
