import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../lib/config.ts';
import { AdminTokenError } from '../../lib/admin-token.ts';

export function tokenDataDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'switchyard-token-'));
}

/** The AdminTokenError that `run` throws; fails the test if it accepts the token. */
export function refusal(run: () => unknown): AdminTokenError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof AdminTokenError, `expected an AdminTokenError, got ${error}`);
    assert.ok(error instanceof ConfigError, 'start-up turns it into exit 78 like any config error');
    return error;
  }
  assert.fail('the token was accepted');
}
