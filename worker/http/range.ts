import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import type { ByteRange } from '../vcs/types.ts';

/**
 * One "bytes=" range of a file of the given size (RFC 9110 14.1.2). Several ranges, or a header we
 * do not understand, mean the whole file (undefined), which the RFC allows.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

/** The bytes of the range from source; destroying the result destroys the source (and its child). */
export function sliceBytes(source: Readable, range: ByteRange): Readable {
  let offset = 0;
  const slice = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      const chunkStart = offset;
      offset += chunk.length;
      const from = Math.max(range.start - chunkStart, 0);
      const to = Math.min(range.end + 1 - chunkStart, chunk.length);
      callback(null, from < to ? chunk.subarray(from, to) : undefined);
    },
  });
  return pipeline(source, slice, () => {});
}
