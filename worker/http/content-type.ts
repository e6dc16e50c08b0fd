import mime from 'mime-types';

// Types a browser would run or render as a document are served as plain text: repository content
// is untrusted and must not execute with the site's origin.
const ACTIVE_TYPES = new Set([
  'text/html',
  'application/xhtml+xml',
  'image/svg+xml',
  'text/xml',
  'application/xml',
  'text/javascript',
  'application/javascript',
  'application/ecmascript',
  'text/ecmascript',
]);

export function looksBinary(sample: Buffer): boolean {
  return sample.subarray(0, 8000).includes(0);
}

export function rawContentType(fileName: string, sample?: Buffer): string {
  const guessed = mime.lookup(fileName) || undefined;
  if (guessed && ACTIVE_TYPES.has(guessed)) return 'text/plain; charset=utf-8';
  if (guessed) return guessed.startsWith('text/') ? `${guessed}; charset=utf-8` : guessed;
  if (sample && !looksBinary(sample)) return 'text/plain; charset=utf-8';
  return 'application/octet-stream';
}
