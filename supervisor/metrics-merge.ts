// Prometheus text exposition (format 0.0.4), merged from several sources into one scrape: each
// source's samples get its labels (every proxy's series get `proxy="<id>"`), and each metric
// family's HELP and TYPE appear once, with every source's samples of that family under them.

const SAMPLE_SUFFIXES = ['_bucket', '_sum', '_count', '_total', '_created', '_info', '_gsum', '_gcount'];

interface Family {
  help?: string;
  type?: string;
  samples: string[];
}

/** Escapes a label value as the exposition format wants it: backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
/** one `name="value"` of a label block, the value with its escapes as written */
const LABEL_PAIR = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|\})/;

/** The labels of a block starting at `{` (values as written, escapes kept) and where it ends; undefined if malformed. */
function parseLabelBlock(text: string): { pairs: Array<[string, string]>; end: number } | undefined {
  const pairs: Array<[string, string]> = [];
  let at = 1;
  if (/^\{\s*\}/.test(text)) return { pairs, end: text.indexOf('}') + 1 };
  for (;;) {
    const pair = LABEL_PAIR.exec(text.slice(at));
    if (!pair) return undefined;
    pairs.push([pair[1], pair[2]]);
    at += pair[0].length;
    if (pair[3] === '}') return { pairs, end: at };
    const closing = /^\s*\}/.exec(text.slice(at)); // a trailing comma
    if (closing) return { pairs, end: at + closing[0].length };
  }
}

/**
 * The sample line with `labels` added in front of its own (a sample without labels gets a block).
 * A label the sample already has under the same name is kept as `exported_<name>`, as Prometheus
 * does on a clash. Undefined for a line that is not a well-formed sample.
 */
export function addLabels(line: string, labels: Record<string, string>): string | undefined {
  const name = NAME.exec(line)?.[0];
  if (!name) return undefined;
  let own: Array<[string, string]> = [];
  let rest = line.slice(name.length);
  if (rest.startsWith('{')) {
    const block = parseLabelBlock(rest);
    if (!block) return undefined;
    own = block.pairs;
    rest = rest.slice(block.end);
  }
  if (!/^\s+\S/.test(rest)) return undefined; // no value
  const added = Object.entries(labels).map(([label, value]) => `${label}="${escapeLabelValue(value)}"`);
  const kept = own.map(([label, value]) => `${Object.hasOwn(labels, label) ? `exported_${label}` : label}="${value}"`);
  return `${name}{${[...added, ...kept].join(',')}}${rest}`;
}

/** The family a sample belongs to: the current one when its name is the family's or a suffixed form of it. */
function familyOf(sampleName: string, current: string | undefined): string {
  if (current && (sampleName === current || SAMPLE_SUFFIXES.some((suffix) => sampleName === current + suffix))) return current;
  return sampleName;
}

/** Adds one source's text to `families` (in order of first appearance), its samples labelled with `labels`. */
function collect(families: Map<string, Family>, text: string, labels: Record<string, string>): void {
  let current: string | undefined;
  const family = (name: string) => {
    let found = families.get(name);
    if (!found) families.set(name, (found = { samples: [] }));
    return found;
  };
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line === '') continue;
    const meta = /^#\s*(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\s(.*))?$/.exec(line);
    if (meta) {
      current = meta[2];
      const entry = family(current);
      if (meta[1] === 'HELP') entry.help ??= meta[3] ?? '';
      else entry.type ??= meta[3] ?? 'untyped';
      continue;
    }
    if (line.startsWith('#')) continue; // a comment
    const labelled = Object.keys(labels).length > 0 ? addLabels(line, labels) : line;
    if (labelled === undefined) continue; // not a sample: dropped rather than passed on broken
    const sampleName = NAME.exec(line)![0];
    const name = familyOf(sampleName, current);
    if (name !== current) current = undefined;
    family(name).samples.push(labelled);
  }
}

export interface MetricsSource {
  text: string;
  /** labels added to every sample of this source ({} for none) */
  labels: Record<string, string>;
}

/** One exposition of every source: a family's HELP and TYPE once, then all its samples, sources in order. */
export function mergeExpositions(sources: MetricsSource[]): string {
  const families = new Map<string, Family>();
  for (const source of sources) collect(families, source.text, source.labels);
  const lines: string[] = [];
  for (const [name, family] of families) {
    if (family.help !== undefined) lines.push(`# HELP ${name} ${family.help}`.trimEnd());
    if (family.type !== undefined) lines.push(`# TYPE ${name} ${family.type}`);
    lines.push(...family.samples);
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}
