// Which `?cmd=` a request to `/<repo>` carries, read so that the worker and hgweb can never
// disagree about it.
//
// hgweb reads `cmd` with Python's parse_qsl (keys percent-decoded, `+` as space) and takes the
// LAST value of a repeated key; fastify's parser took the first. `?cmd=capabilities&cmd=unbundle`
// therefore passed the worker's push check as "capabilities" and ran in hgweb as "unbundle". So
// the worker reads the raw query string itself and only accepts exactly one parameter that looks
// like `cmd` in any spelling (case, percent-encoding, `&` or `;` separated), spelt literally
// `cmd`, with a value of plain lowercase letters and underscores: then both readings are the same.
// hgweb's other way to name a command, the first path segment, is closed because the worker
// always runs it with PATH_INFO=/.

/**
 * The Mercurial wire-protocol commands (version 1, as sent by `hg clone/pull/push`). Anything
 * else in `cmd` is an hgweb page (annotate, log, archive, ...): the worker renders its own pages
 * and never lets hgweb render one, some of which cost seconds of CPU and tens of MB of HTML.
 */
export const HG_WIRE_COMMANDS: ReadonlySet<string> = new Set([
  'batch',
  'between',
  'branches',
  'branchmap',
  'capabilities',
  'changegroup',
  'changegroupsubset',
  'clonebundles',
  'clonebundles_manifest',
  'debugwireargs',
  'getbundle',
  'heads',
  'hello',
  'known',
  'listkeys',
  'lookup',
  'narrow_widen',
  'protocaps',
  'pushkey',
  'stream_out',
  'unbundle',
]);

export type HgCommand = { ok: true; command: string } | { ok: false; status: 400 | 404; message: string };

const PLAIN_COMMAND = /^[a-z_]{1,64}$/;

/** Percent-decoding as lenient as Python's unquote: a malformed escape stays as it is. */
function decodeComponent(raw: string): string {
  return raw.replace(/\+/g, ' ').replace(/%([0-9a-fA-F]{2})/g, (_match, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

function looksLikeCmd(rawName: string): boolean {
  return decodeComponent(rawName).trim().toLowerCase() === 'cmd';
}

/**
 * The wire-protocol command of a `/<repo>` request URL (`request.raw.url`): undefined when the
 * query has no `cmd` at all (the summary page), else the command or why it is refused.
 */
export function hgWireCommand(url: string): HgCommand | undefined {
  const queryStart = url.indexOf('?');
  if (queryStart === -1) return undefined;
  const cmdParams = url
    .slice(queryStart + 1)
    .split(/[&;]/)
    .map((param) => {
      const equals = param.indexOf('=');
      return equals === -1 ? { name: param, value: '' } : { name: param.slice(0, equals), value: param.slice(equals + 1) };
    })
    .filter((param) => looksLikeCmd(param.name));
  if (cmdParams.length === 0) return undefined;
  const [param] = cmdParams;
  if (cmdParams.length > 1 || param.name !== 'cmd' || !PLAIN_COMMAND.test(param.value)) {
    return { ok: false, status: 400, message: 'The query must name exactly one Mercurial command, as a single plain cmd=<command> parameter.' };
  }
  if (!HG_WIRE_COMMANDS.has(param.value)) {
    return {
      ok: false,
      status: 404,
      message: `"${param.value}" is not a Mercurial wire-protocol command. This URL serves hg clients only; browse the repository at the same URL without ?cmd=.`,
    };
  }
  return { ok: true, command: param.value };
}
