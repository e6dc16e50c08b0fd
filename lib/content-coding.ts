// Which Content-Encoding a request body carries, read the same way by the worker (which undoes it
// before git reads the body) and the proxy (which must key a gzipped clone request as its plain
// twin): one coding among those the reader can undo, or none.

/**
 * The one coding to undo ('' for none: absent, empty or identity), or undefined for a list of
 * codings or one that `decodable` does not name.
 */
export function singleContentCoding(header: string | undefined, decodable: Readonly<Record<string, unknown>>): string | undefined {
  const codings = (header ?? '')
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity');
  if (codings.length === 0) return '';
  return codings.length === 1 && Object.hasOwn(decodable, codings[0]) ? codings[0] : undefined;
}
