/** Rendered pages and repository metadata, as bytes. Keys embed what makes them stale. */
export interface ContentCache {
  get(key: string): Promise<Buffer | undefined>;
  set(key: string, value: Buffer): Promise<void>;
  /** bytes held in this process */
  readonly localBytes: number;
  close(): Promise<void>;
}

export async function cachedBuffer(cache: ContentCache, key: string, compute: () => Promise<Buffer>): Promise<Buffer> {
  const hit = await cache.get(key);
  if (hit) return hit;
  const value = await compute();
  await cache.set(key, value);
  return value;
}

export async function cachedJson<T>(cache: ContentCache, key: string, compute: () => Promise<T>): Promise<T> {
  const bytes = await cachedBuffer(cache, key, async () => Buffer.from(JSON.stringify(await compute()), 'utf8'));
  return JSON.parse(bytes.toString('utf8')) as T;
}
