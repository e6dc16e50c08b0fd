// Which hg `getbundle` requests are full clones whose changesets are fixed by what they ask for,
// read into a normal form. The heads must be named (without them hgweb sends the repository's
// current heads) and `common` must be absent or the null node (anything else is a pull).
import type { RequestReading } from './clone-key.ts';
import { hgArguments, joinedHeaders, type HgArgumentSources } from './hg-args.ts';

const NODE = /^[0-9a-f]{40}$/;
const NULL_NODE = '0'.repeat(40);

/**
 * Arguments whose answer is repository state that node ids do not pin (bookmarks, phases,
 * obsolescence markers, pushkey namespaces, a stream clone of the whole store): such a bundle may
 * be shared while it is generated, never served again afterwards.
 */
const STATE_FLAGS = ['bookmarks', 'phases', 'obsmarkers', 'stream'];
const STATE_LISTS = ['listkeys'];

const bypass = (reason: string): RequestReading => ({ share: false, reason });

/** hg's encoded node list: nodes joined by single spaces; undefined when one is not a node. */
function nodeList(value: string): string[] | undefined {
  if (value === '') return [];
  const nodes = value.split(' ');
  return nodes.every((node) => NODE.test(node)) ? nodes : undefined;
}

/** The wire protocol's boolean: anything but '' and '0' is true. */
const truthy = (value: string | undefined) => value !== undefined && value !== '' && value !== '0';

export function readHgGetbundle(sources: HgArgumentSources, limits: { maxBytes: number; maxArguments: number }): RequestReading {
  const read = hgArguments(sources, limits);
  if (!read.ok) return bypass(read.reason);
  const { args } = read;
  const heads = nodeList(args.get('heads') ?? '');
  if (!heads) return bypass('malformed-heads');
  if (heads.length === 0) return bypass('heads-not-pinned');
  const common = nodeList(args.get('common') ?? '');
  if (!common) return bypass('malformed-common');
  if (common.some((node) => node !== NULL_NODE)) return bypass('incremental');
  const protocolCapabilities = joinedHeaders(sources.headers, 'x-hgproto', limits.maxBytes);
  if (protocolCapabilities === undefined) return bypass('malformed-protocol-capabilities');
  const retain = !STATE_FLAGS.some((name) => truthy(args.get(name))) && !STATE_LISTS.some((name) => (args.get(name) ?? '') !== '');
  args.set('heads', [...heads].sort().join(' '));
  const sorted = [...args].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { share: true, retain, shape: { args: sorted, protocolCapabilities } };
}
