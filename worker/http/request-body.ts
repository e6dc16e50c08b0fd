import type { IncomingMessage } from 'node:http';
import { finished, Transform, type Readable, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import { singleContentCoding } from '../../lib/content-coding.ts';

// The body of a git or hg protocol request as the CGI program is to read it: decompressed here
// when it came with a Content-Encoding, and never longer than the worker's limit.
//
// Why here and not in git: `git http-backend` inflates a gzip request body itself, with no limit
// on the inflated size, straight into upload-pack. 436 KB of gzipped duplicate `want` lines
// inflate to 150 MB and held a clone worker for 15 s. Git clients do gzip their larger requests
// (fetch negotiation over ~1 KiB), so gzip must keep working: the worker inflates as a stream,
// counts what comes out and stops at the limit. hgweb never decodes a Content-Encoding (it reads
// the bytes as they are), so for hg the limit simply applies to the plain body.

/** A request body the worker will not hand on; the CGI bridge answers with this status. */
export class BodyRefused extends Error {
  constructor(
    readonly status: 400 | 413 | 415,
    message: string,
  ) {
    super(message);
  }
}

export type RequestBody =
  | {
      ok: true;
      /** undefined when the request has no body */
      body: Readable | undefined;
      /** true when `body` is decompressed: the request's Content-Length no longer describes it */
      decoded: boolean;
    }
  | { ok: false; refused: BodyRefused };

const DECODERS: Record<string, () => Transform> = {
  gzip: () => zlib.createGunzip(),
  'x-gzip': () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
};

export function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

function tooLarge(maxBytes: number, decoded: boolean): BodyRefused {
  const what = decoded ? 'once decompressed' : '';
  return new BodyRefused(413, `The request body is larger than this server accepts (${maxBytes} bytes${what ? ` ${what}` : ''}).`);
}

/** Passes bytes through until more than maxBytes have gone by, then fails with a 413. */
class ByteLimit extends Transform {
  private seen = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly decoded: boolean,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.maxBytes) return callback(tooLarge(this.maxBytes, this.decoded));
    callback(null, chunk);
  }
}

/**
 * The request body, decoded and limited to maxBytes. The returned stream fails with BodyRefused
 * (413 over the limit, 400 for corrupt compressed data); when it does, the rest of the request
 * is read and thrown away undecoded, so the refusal reaches a client that is still sending.
 * `decode: false` hands the bytes on as they are, whatever their Content-Encoding says.
 */
export function openRequestBody(req: IncomingMessage, maxBytes: number, options: { decode: boolean }): RequestBody {
  if (!hasBody(req)) return { ok: true, body: undefined, decoded: false };
  const coding = options.decode ? singleContentCoding(req.headers['content-encoding'], DECODERS) : '';
  if (coding === undefined) {
    return { ok: false, refused: new BodyRefused(415, 'This Content-Encoding is not supported: send the request body plain, gzip or deflate.') };
  }
  const decoded = coding !== '';
  if (!decoded && Number(req.headers['content-length'] ?? 0) > maxBytes) return { ok: false, refused: tooLarge(maxBytes, false) };

  const limit = new ByteLimit(maxBytes, decoded);
  const decoder = decoded ? DECODERS[coding]() : undefined;
  if (decoder) {
    req.pipe(decoder).pipe(limit);
    decoder.once('error', () => limit.destroy(new BodyRefused(400, `The request body is not valid ${coding} data.`)));
  } else {
    req.pipe(limit);
  }
  finished(req, (error) => {
    if (error) limit.destroy(error);
  });
  limit.once('error', () => {
    req.unpipe();
    decoder?.destroy();
    req.resume();
  });
  return { ok: true, body: limit, decoded };
}
