import { test } from 'node:test';
import assert from 'node:assert/strict';
import { afterSendFailure, type RetryVerdict, type SendFailure } from '../../proxy/retry-policy.ts';

const base: SendFailure = {
  code: 'ECONNREFUSED',
  method: 'GET',
  responded: false,
  reusedConnection: false,
  replayable: true,
  sends: 1,
  workers: 3,
  resetRetried: false,
};

const cases: Array<[string, Partial<SendFailure>, RetryVerdict]> = [
  ['refused connect: eject, redispatch', {}, { eject: true, retry: 'conn-failure' }],
  ['refused connect of a POST with a body held whole: redispatch too', { method: 'POST' }, { eject: true, retry: 'conn-failure' }],
  ['connect timeout counts as a refusal', { code: 'ECONNECT_TIMEOUT' }, { eject: true, retry: 'conn-failure' }],
  ['host unreachable counts as a refusal', { code: 'EHOSTUNREACH' }, { eject: true, retry: 'conn-failure' }],
  ['network unreachable counts as a refusal', { code: 'ENETUNREACH' }, { eject: true, retry: 'conn-failure' }],
  ['refused on every worker: give up (each refusal ejected one)', { sends: 4, workers: 3 }, { eject: true, retry: undefined }],
  ['refused on the last worker still tried', { sends: 3, workers: 3 }, { eject: true, retry: 'conn-failure' }],
  ['refused, body streaming from the client: not replayable', { replayable: false }, { eject: true, retry: undefined }],
  ['reused keep-alive socket reset before any response: retry once, keep the worker', { code: 'ECONNRESET', reusedConnection: true }, { eject: false, retry: 'reused-reset' }],
  ['reused reset of a HEAD, PUT, DELETE, OPTIONS: idempotent, retried', { code: 'ECONNRESET', reusedConnection: true, method: 'DELETE' }, { eject: false, retry: 'reused-reset' }],
  ['reused reset of a POST: not idempotent, not retried, worker kept', { code: 'ECONNRESET', reusedConnection: true, method: 'POST' }, { eject: false, retry: undefined }],
  ['second reused reset: not retried again', { code: 'ECONNRESET', reusedConnection: true, resetRetried: true }, { eject: false, retry: undefined }],
  ['reset of a fresh connection before a response: the worker died on it, ejected, not replayed', { code: 'ECONNRESET' }, { eject: true, retry: undefined }],
  ['worker failed after its response headers: nothing to retry, worker kept', { code: 'ECONNRESET', responded: true }, { eject: false, retry: undefined }],
  ['refused after a response (impossible, but never a retry)', { responded: true }, { eject: true, retry: undefined }],
  ['a socket hang up on a fresh connection: ejected, not replayed', { code: 'socket hang up' }, { eject: true, retry: undefined }],
];

for (const [name, change, expected] of cases) {
  test(`retry policy: ${name}`, () => {
    assert.deepEqual(afterSendFailure({ ...base, ...change }), expected);
  });
}
