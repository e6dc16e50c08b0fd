// Classifies the requests a capture server recorded from real clients (capture-server.ts), as the
// proxy would, and asserts on whole batches of them.
import assert from 'node:assert/strict';
import { validateConfig, type RequestClass } from '../../lib/config.ts';
import { Classifier, splitUrl } from '../../proxy/classify.ts';
import type { CapturedRequest } from './capture-server.ts';

export const BOT_TOKEN = 'ci-token-4f9a1c0e7d';

export function classifierWith(overrides: Record<string, unknown> = {}): Classifier {
  return new Classifier(validateConfig(structuredClone(overrides), 'test'));
}

export function classifyCaptured(classifier: Classifier, request: CapturedRequest): RequestClass {
  const { path: requestPath, query } = splitUrl(request.url);
  return classifier.classify({ method: request.method, path: requestPath, query, headers: request.headers, clientIp: request.clientIp });
}

export function show(requests: CapturedRequest[]): string {
  return requests.map((request) => `${request.method} ${request.url} ${JSON.stringify(request.headers)}`).join('\n');
}

export function assertAll(classifier: Classifier, requests: CapturedRequest[], expected: RequestClass, label: string): void {
  assert.ok(requests.length > 0, `${label}: no requests were captured`);
  for (const request of requests) {
    assert.equal(
      classifyCaptured(classifier, request),
      expected,
      `${label}: ${request.method} ${request.url} (UA ${request.headers['user-agent']}) should be ${expected}\n${show(requests)}`,
    );
  }
}
