import zlib from 'node:zlib';
import { singleContentCoding } from '../../lib/content-coding.ts';

// A git request body as upload-pack reads it: git gzips request bodies over 1 KiB, so the same
// request arrives plain or gzipped and must read the same. Inflating never goes past maxBytes: a
// few KB of gzip can inflate to hundreds of MB.

export type DecodedBody = { ok: true; body: Buffer } | { ok: false; reason: string };

const DECODERS: Record<string, (body: Buffer, options: zlib.ZlibOptions) => Buffer> = {
  gzip: zlib.gunzipSync,
  'x-gzip': zlib.gunzipSync,
  deflate: zlib.inflateSync,
};

export function decodedBody(body: Buffer, contentEncoding: string | string[] | undefined, maxBytes: number): DecodedBody {
  const coding = Array.isArray(contentEncoding) ? undefined : singleContentCoding(contentEncoding, DECODERS);
  if (coding === undefined) return { ok: false, reason: 'content-encoding' };
  if (coding === '') return body.length > maxBytes ? { ok: false, reason: 'too-large' } : { ok: true, body };
  try {
    return { ok: true, body: DECODERS[coding](body, { maxOutputLength: maxBytes }) };
  } catch (error) {
    const tooLarge = (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
    return { ok: false, reason: tooLarge ? 'too-large' : 'corrupt-encoding' };
  }
}
