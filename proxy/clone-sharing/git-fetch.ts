// Which git upload-pack requests are full clones whose answer is fixed by what they ask for, read
// into a normal form: two requests with the same normal form get the same pack from upload-pack.
// Anything that negotiates (have), depends on the client's shallow state, names refs (deepen-not,
// want-ref: their answer moves with the refs) or that this reader does not know is not shared.
import type { RequestReading } from './clone-key.ts';
import { parsePackets, type Packet } from './pkt-line.ts';

const OBJECT_ID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

/** Capabilities that name the client, not what it asks for. */
const IGNORED_CAPABILITIES = ['agent', 'session-id'];

/** Lines that change the answer only through their own text, kept in order (git takes the last). */
const V0_SHAPING_LINES = new Set(['deepen', 'deepen-since', 'filter']);

/** protocol v2 fetch arguments, besides want and done, that shape the pack through their own text */
const V2_SHAPING_ARGUMENTS = new Set([
  'thin-pack',
  'no-progress',
  'include-tag',
  'ofs-delta',
  'deepen',
  'deepen-relative',
  'deepen-since',
  'filter',
  'sideband-all',
  'wait-for-done',
]);

/** Why a line stops sharing: it negotiates, depends on the client's state or on ref state. */
const UNSHARED_LINES = new Map([
  ['have', 'incremental'],
  ['shallow', 'shallow'],
  ['deepen-not', 'deepen-not'],
  ['want-ref', 'want-ref'],
  ['packfile-uris', 'packfile-uris'],
]);

const bypass = (reason: string): RequestReading => ({ share: false, reason });

function lineName(text: string): string {
  const space = text.indexOf(' ');
  return space < 0 ? text : text.slice(0, space);
}

/**
 * The protocol version upload-pack will speak for a Git-Protocol header: like git, the highest
 * `version=N` among its colon-separated entries that git knows.
 */
function gitProtocolVersion(header: string | undefined): number {
  let version = 0;
  for (const entry of (header ?? '').split(':')) {
    const value = entry.startsWith('version=') ? entry.slice('version='.length) : undefined;
    if (value === '1' || value === '2') version = Math.max(version, Number(value));
  }
  return version;
}

/**
 * Capabilities as a sorted set without the ignored ones; undefined when one is given twice with
 * different values (which one upload-pack goes by depends on their order).
 */
function normalCapabilities(capabilities: Iterable<string>): string[] | undefined {
  const byName = new Map<string, string>();
  for (const capability of capabilities) {
    const equals = capability.indexOf('=');
    const name = equals < 0 ? capability : capability.slice(0, equals);
    if (IGNORED_CAPABILITIES.includes(name)) continue;
    const seen = byName.get(name);
    if (seen !== undefined && seen !== capability) return undefined;
    byName.set(name, capability);
  }
  return [...byName.values()].sort();
}

/** `want <oid>[ <capabilities>]`: the object id, and the capabilities (v0 sends them on the first). */
function readWant(text: string): { oid: string; capabilities: string[] } | undefined {
  const rest = text.slice('want '.length);
  const space = rest.indexOf(' ');
  const oid = space < 0 ? rest : rest.slice(0, space);
  if (!OBJECT_ID.test(oid)) return undefined;
  return { oid, capabilities: space < 0 ? [] : rest.slice(space + 1).split(' ').filter((capability) => capability !== '') };
}

/** The packets after the wants' flush of a v0 clone: `done` and nothing else. */
function v0Ending(rest: Packet[]): string | undefined {
  if (rest.some((packet) => packet.kind === 'data' && lineName(packet.text) === 'have')) return 'incremental';
  const [only, ...more] = rest;
  return only?.kind === 'data' && only.text === 'done' && more.length === 0 ? undefined : 'not-done';
}

/** Protocol v0/v1: want lines (capabilities on them), deepen/filter lines, a flush, `done`. */
function v0Request(packets: Packet[]): RequestReading {
  const wants = new Set<string>();
  const capabilities: string[] = [];
  const shaping: string[] = [];
  const flushAt = packets.findIndex((packet) => packet.kind === 'flush');
  if (flushAt < 0) return bypass('malformed');
  for (const packet of packets.slice(0, flushAt)) {
    if (packet.kind !== 'data') return bypass('malformed');
    const name = lineName(packet.text);
    if (name === 'want') {
      const want = readWant(packet.text);
      if (!want) return bypass('malformed');
      wants.add(want.oid);
      for (const capability of want.capabilities) capabilities.push(capability);
    } else if (V0_SHAPING_LINES.has(name)) {
      shaping.push(packet.text);
    } else {
      return bypass(UNSHARED_LINES.get(name) ?? 'unknown-line');
    }
  }
  if (wants.size === 0) return bypass('no-wants');
  const unshared = v0Ending(packets.slice(flushAt + 1));
  if (unshared) return bypass(unshared);
  const normal = normalCapabilities(capabilities);
  if (!normal) return bypass('conflicting-capabilities');
  return { share: true, retain: true, shape: { protocol: 0, wants: [...wants].sort(), capabilities: normal, lines: shaping } };
}

/** Splits a v2 request into command line, capability lines and argument lines, or why not. */
function v2Sections(packets: Packet[]): { command: string; capabilities: string[]; args: string[] } | string {
  const delimAt = packets.findIndex((packet) => packet.kind === 'delim');
  const flushAt = packets.findIndex((packet) => packet.kind === 'flush');
  const [first] = packets;
  if (first?.kind !== 'data' || !first.text.startsWith('command=')) return 'malformed';
  if (first.text !== 'command=fetch') return first.text === 'command=ls-refs' ? 'ls-refs' : 'command';
  if (delimAt < 0 || flushAt !== packets.length - 1 || delimAt > flushAt) return 'malformed';
  const text = (section: Packet[]) => (section.every((packet) => packet.kind === 'data') ? section.map((packet) => packet.text) : undefined);
  const capabilities = text(packets.slice(1, delimAt));
  const args = text(packets.slice(delimAt + 1, flushAt));
  return capabilities && args ? { command: first.text, capabilities, args } : 'malformed';
}

/** Protocol v2: `command=fetch`, capabilities, a delimiter, want/done and shaping arguments, a flush. */
function v2Request(packets: Packet[]): RequestReading {
  const sections = v2Sections(packets);
  if (typeof sections === 'string') return bypass(sections);
  // server options are opaque to us and reach the server's hooks
  if (sections.capabilities.some((capability) => capability.split('=')[0] === 'server-option')) return bypass('server-option');
  const wants = new Set<string>();
  const shaping: string[] = [];
  let done = false;
  for (const arg of sections.args) {
    const name = lineName(arg);
    if (name === 'want') {
      const want = readWant(arg);
      if (!want || want.capabilities.length > 0) return bypass('malformed');
      wants.add(want.oid);
    } else if (arg === 'done') {
      done = true;
    } else if (V2_SHAPING_ARGUMENTS.has(name)) {
      shaping.push(arg);
    } else {
      return bypass(UNSHARED_LINES.get(name) ?? 'unknown-argument');
    }
  }
  if (wants.size === 0) return bypass('no-wants');
  if (!done) return bypass('not-done');
  const normal = normalCapabilities(sections.capabilities);
  if (!normal) return bypass('conflicting-capabilities');
  return { share: true, retain: true, shape: { protocol: 2, wants: [...wants].sort(), capabilities: normal, args: shaping } };
}

/** A decoded upload-pack request body read for the protocol its Git-Protocol header selects. */
export function readGitFetch(body: Buffer, gitProtocol: string | undefined, maxLines: number): RequestReading {
  const parsed = parsePackets(body, maxLines);
  if (!parsed.ok) return bypass(parsed.reason);
  return gitProtocolVersion(gitProtocol) === 2 ? v2Request(parsed.packets) : v0Request(parsed.packets);
}
