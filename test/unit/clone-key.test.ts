import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import zlib from 'node:zlib';
import { cloneKeyOf, type CloneKey, type CloneRequest } from '../../proxy/clone-sharing/clone-key.ts';
import { pktLine } from '../../proxy/clone-sharing/pkt-line.ts';
import { SeededRandom } from '../../lib/seeded-random.ts';

// What real clients send, byte for byte: git 2.39.5 and Mercurial 6.3.2 cloning the demo repos
// (test/integration/clone-key-capture.test.ts captures them live and checks the same rules).
const REAL_V0_CLONE =
  '00a4want 03afd253b9fe7d30e11c8e92f76ef77b9fa04554 multi_ack_detailed no-done side-band-64k thin-pack no-progress ofs-delta deepen-since deepen-not agent=git/2.39.5\n' +
  '0032want 847c75bb004d5dcceeb7b6d0b860914da16e45c9\n0032want 9b0b3722edba62f555e7f22dc2f8a1e8e77eab6a\n' +
  '0032want c042dddb8bd1d9606186f595de9b95840b06ddd3\n0032want 7d571871530f97a3584d02a84b2c224783f8e5b4\n' +
  '0032want 7913c84fc0a929b989249719e6a25a19e5e091bd\n0032want 9169c3ade8b8086021e92f109030655fa3960dca\n' +
  '0032want 7b9c75925b0abb16c0c55e4a4e64e6d95096bbb9\n00000009done\n';
const REAL_V2_LS_REFS =
  '0014command=ls-refs\n0014agent=git/2.39.50016object-format=sha100010009peel\n000csymrefs\n000bunborn\n' +
  '0014ref-prefix HEAD\n001bref-prefix refs/heads/\n001aref-prefix refs/tags/\n0000';
const REAL_V2_CLONE =
  '0011command=fetch0014agent=git/2.39.50016object-format=sha10001000dthin-pack000fno-progress000dofs-delta' +
  '0032want 847c75bb004d5dcceeb7b6d0b860914da16e45c9\n0032want 03afd253b9fe7d30e11c8e92f76ef77b9fa04554\n' +
  '0032want 847c75bb004d5dcceeb7b6d0b860914da16e45c9\n0032want 9b0b3722edba62f555e7f22dc2f8a1e8e77eab6a\n' +
  '0032want c042dddb8bd1d9606186f595de9b95840b06ddd3\n0032want 7d571871530f97a3584d02a84b2c224783f8e5b4\n' +
  '0032want 7913c84fc0a929b989249719e6a25a19e5e091bd\n0032want 9169c3ade8b8086021e92f109030655fa3960dca\n' +
  '0032want 7b9c75925b0abb16c0c55e4a4e64e6d95096bbb9\n0009done\n0000';
const REAL_V2_SHALLOW_CLONE =
  '0011command=fetch0014agent=git/2.39.50016object-format=sha10001000dthin-pack000fno-progress000finclude-tag' +
  '000dofs-delta000cdeepen 10032want 847c75bb004d5dcceeb7b6d0b860914da16e45c9\n0032want 847c75bb004d5dcceeb7b6d0b860914da16e45c9\n0009done\n0000';
const HG_HEAD = 'd261cc43a19706a28d6b0ad5a942acc20aae730f';
const NULL_NODE = '0'.repeat(40);
const REAL_HG_BUNDLECAPS =
  'HG20%2Cbundle2%3DHG20%250Abookmarks%250Achangegroup%253D01%252C02%250Acheckheads%253Drelated%250Adigests%253Dmd5%252Csha1%252Csha512' +
  '%250Aerror%253Dabort%252Cunsupportedcontent%252Cpushraced%252Cpushkey%250Ahgtagsfnodes%250Alistkeys%250Aphases%253Dheads%250Apushkey' +
  '%250Aremote-changegroup%253Dhttp%252Chttps%250Astream%253Dv2';
const realHgArgs = (common: string) =>
  `bookmarks=1&bundlecaps=${REAL_HG_BUNDLECAPS}&cg=1&common=${common}&heads=${HG_HEAD}&listkeys=bookmarks&phases=1`;
const REAL_HG_PROTO = '0.1 0.2 comp=zstd,zlib,none,bzip2 partial-pull';

const LIMITS = { maxDecodedBytes: 1 << 20 };
const GIT_TYPE = 'application/x-git-upload-pack-request';
const OID_A = 'a'.repeat(40);
const OID_B = 'b'.repeat(40);

function git(body: string | Buffer | undefined, headers: IncomingHttpHeaders = {}, request: Partial<CloneRequest> = {}): CloneRequest {
  return {
    method: 'POST',
    path: '/demo-git/git-upload-pack',
    query: '',
    headers: { host: 'example.org', 'content-type': GIT_TYPE, ...headers },
    body: typeof body === 'string' ? Buffer.from(body, 'latin1') : body,
    ...request,
  };
}
const gitV2 = (body: string | Buffer, headers: IncomingHttpHeaders = {}) => git(body, { 'git-protocol': 'version=2', ...headers });

/** An hg request with its arguments in X-HgArg-1 (the way hg clients send them to hgweb). */
function hg(args: string, headers: IncomingHttpHeaders = {}, request: Partial<CloneRequest> = {}): CloneRequest {
  return {
    method: 'GET',
    path: '/demo-hg',
    query: 'cmd=getbundle',
    headers: { host: 'example.org', 'x-hgarg-1': args, 'x-hgproto-1': REAL_HG_PROTO, ...headers },
    body: undefined,
    ...request,
  };
}

const v0 = (...lines: string[]) => `${lines.slice(0, -1).map(pktLine).join('')}0000${pktLine(lines[lines.length - 1])}`;
const v2 = (capabilities: string[], args: string[]) => `${pktLine('command=fetch')}${capabilities.map(pktLine).join('')}0001${args.map(pktLine).join('')}0000`;

const keyOf = (request: CloneRequest, limits = LIMITS) => cloneKeyOf(request, limits);
function sharedKey(request: CloneRequest): string {
  const key = keyOf(request);
  assert.ok(key?.share, `shared: ${JSON.stringify(key)}`);
  return key.key;
}

test('full clones by real clients are shared; git answers are retained, hg ones with bookmarks and phases are not', () => {
  const cases: Array<[string, CloneRequest, CloneKey['vcs'], boolean]> = [
    ['git v0 clone', git(REAL_V0_CLONE), 'git', true],
    ['git v2 clone', gitV2(REAL_V2_CLONE), 'git', true],
    ['git v2 shallow clone (deepen 1)', gitV2(REAL_V2_SHALLOW_CLONE), 'git', true],
    ['git v0 one want, no capabilities', git(v0(`want ${OID_A}`, 'done')), 'git', true],
    ['git v0 with deepen and filter lines', git(v0(`want ${OID_A} filter`, 'deepen 3', 'filter blob:none', 'done')), 'git', true],
    ['hg clone (bookmarks, phases, listkeys)', hg(realHgArgs(NULL_NODE)), 'hg', false],
    ['hg clone of pinned heads only', hg(`cg=1&common=${NULL_NODE}&heads=${HG_HEAD}`), 'hg', true],
    ['hg clone, bookmarks=0 and no common', hg(`bookmarks=0&cg=1&heads=${HG_HEAD}`), 'hg', true],
    ['hg clone asking for a stream', hg(`cg=1&heads=${HG_HEAD}&stream=1`), 'hg', false],
    ['hg clone asking for obsmarkers', hg(`cg=1&heads=${HG_HEAD}&obsmarkers=1`), 'hg', false],
    ['hg clone, arguments in the query string', hg('', { 'x-hgarg-1': undefined }, { query: `cmd=getbundle&heads=${HG_HEAD}&common=${NULL_NODE}` }), 'hg', true],
    [
      'hg clone, arguments in the body (httppostargs)',
      hg('', { 'x-hgarg-1': undefined, 'x-hgargs-post': String(`cg=1&heads=${HG_HEAD}`.length) }, { method: 'POST', body: Buffer.from(`cg=1&heads=${HG_HEAD}payload`) }),
      'hg',
      true,
    ],
  ];
  for (const [label, request, vcs, retain] of cases) {
    const key = keyOf(request);
    assert.ok(key?.share, `${label}: ${JSON.stringify(key)}`);
    assert.equal(key.vcs, vcs, label);
    assert.equal(key.retain, retain, label);
    assert.match(key.key, /^[0-9a-f]{64}$/, label);
  }
});

test('requests that are not a full clone, or are not understood, go to a worker on their own', () => {
  const gzipBomb = zlib.gzipSync(Buffer.concat([Buffer.from(pktLine(`want ${OID_A}\n`)), Buffer.alloc(8 << 20, '0')]));
  const manyLines = v0(...Array.from({ length: 100_001 }, () => `want ${OID_A}`), 'done');
  const cases: Array<[string, CloneRequest, string, typeof LIMITS?]> = [
    ['v0 fetch with haves', git(`${pktLine(`want ${OID_A}`)}0000${pktLine(`have ${OID_B}`)}${pktLine('done')}`), 'incremental'],
    ['v0 negotiation round without done', git(`${pktLine(`want ${OID_A}`)}0000${pktLine(`have ${OID_B}`)}0000`), 'incremental'],
    ['v0 shallow client', git(v0(`want ${OID_A}`, `shallow ${OID_B}`, 'deepen 1', 'done')), 'shallow'],
    ['v0 deepen-not (names a ref)', git(v0(`want ${OID_A}`, 'deepen-not refs/heads/main', 'done')), 'deepen-not'],
    ['v0 wants without done', git(`${pktLine(`want ${OID_A}`)}0000`), 'not-done'],
    ['v0 more after done', git(`${v0(`want ${OID_A}`, 'done')}${pktLine('done')}`), 'not-done'],
    ['v0 no wants', git(`0000${pktLine('done')}`), 'no-wants'],
    ['v0 unknown line', git(v0(`want ${OID_A}`, 'frobnicate', 'done')), 'unknown-line'],
    ['v0 line named like an object property', git(v0(`want ${OID_A}`, 'constructor', 'done')), 'unknown-line'],
    ['v0 want of invalid hex', git(v0(`want ${'g'.repeat(40)}`, 'done')), 'malformed'],
    ['v0 want of upper-case hex', git(v0(`want ${'A'.repeat(40)}`, 'done')), 'malformed'],
    ['v0 want of a short id', git(v0('want abc123', 'done')), 'malformed'],
    ['v0 conflicting object formats', git(v0(`want ${OID_A} object-format=sha1`, `want ${OID_B} object-format=sha256`, 'done')), 'conflicting-capabilities'],
    ['pkt-line length past the end', git(`00ffwant ${OID_A}\n0000`), 'malformed'],
    ['pkt-line length that is not hex', git(`00zzwant ${OID_A}\n00000009done\n`), 'malformed'],
    ['pkt-line length 0003', git(`0003${v0(`want ${OID_A}`, 'done')}`), 'malformed'],
    ['truncated length', git(`${v0(`want ${OID_A}`, 'done')}00`), 'malformed'],
    ['a NUL in a line', git(v0(`want ${OID_A} ofs-delta\0side-band-64k`, 'done')), 'malformed'],
    ['v2 ls-refs', gitV2(REAL_V2_LS_REFS), 'ls-refs'],
    ['v2 another command', gitV2(`${pktLine('command=object-info')}0001${pktLine(`oid ${OID_A}`)}0000`), 'command'],
    ['v2 fetch with haves', gitV2(v2([], [`want ${OID_A}`, `have ${OID_B}`, 'done'])), 'incremental'],
    ['v2 shallow client', gitV2(v2([], [`want ${OID_A}`, `shallow ${OID_B}`, 'deepen 1', 'done'])), 'shallow'],
    ['v2 want-ref', gitV2(v2([], ['want-ref refs/heads/main', 'done'])), 'want-ref'],
    ['v2 deepen-not', gitV2(v2([], [`want ${OID_A}`, 'deepen-not refs/heads/main', 'done'])), 'deepen-not'],
    ['v2 packfile-uris', gitV2(v2([], [`want ${OID_A}`, 'packfile-uris https', 'done'])), 'packfile-uris'],
    ['v2 without done', gitV2(v2([], [`want ${OID_A}`])), 'not-done'],
    ['v2 unknown argument', gitV2(v2([], [`want ${OID_A}`, 'frobnicate', 'done'])), 'unknown-argument'],
    ['v2 argument named like an object property', gitV2(v2([], [`want ${OID_A}`, '__proto__', 'done'])), 'unknown-argument'],
    ['v2 server options', gitV2(v2(['server-option=x'], [`want ${OID_A}`, 'done'])), 'server-option'],
    ['v2 bytes after the flush', gitV2(`${v2([], [`want ${OID_A}`, 'done'])}${pktLine('done')}`), 'malformed'],
    ['v2 without a delimiter', gitV2(`${pktLine('command=fetch')}${pktLine(`want ${OID_A}`)}0000`), 'malformed'],
    ['v2 body without the v2 header', git(REAL_V2_CLONE), 'unknown-line'],
    ['v0 body with the v2 header', gitV2(REAL_V0_CLONE), 'malformed'],
    ['brotli body', git(REAL_V0_CLONE, { 'content-encoding': 'br' }), 'content-encoding'],
    ['gzip twice', git(REAL_V0_CLONE, { 'content-encoding': 'gzip, gzip' }), 'content-encoding'],
    ['corrupt gzip', git(Buffer.from('not gzip'), { 'content-encoding': 'gzip' }), 'corrupt-encoding'],
    ['gzip bomb past the bound', git(gzipBomb, { 'content-encoding': 'gzip' }), 'too-large'],
    ['plain body past the bound', git(v0(`want ${OID_A}`, 'done'), {}), 'too-large', { maxDecodedBytes: 20 }],
    ['100001 want lines', git(manyLines), 'too-many-lines', { maxDecodedBytes: 16 << 20 }],
    ['body not held by the proxy', git(undefined, { 'content-length': '527' }), 'body-not-held'],
    ['no body at all', git(undefined), 'no-body'],
    ['a range of the answer', git(REAL_V0_CLONE, { range: 'bytes=0-99' }), 'range'],
    ['hg pull (common heads)', hg(realHgArgs(HG_HEAD)), 'incremental'],
    ['hg getbundle of the current heads (none named)', hg(`cg=1&common=${NULL_NODE}`), 'heads-not-pinned'],
    ['hg heads that are not nodes', hg(`cg=1&heads=tip`), 'malformed-heads'],
    ['hg common that is not a node', hg(`common=null&heads=${HG_HEAD}`), 'malformed-common'],
    ['hg argument twice', hg(`heads=${HG_HEAD}&heads=${HG_HEAD}`), 'repeated-argument'],
    ['hg argument in the query and a header', hg(`heads=${HG_HEAD}`, {}, { query: `cmd=getbundle&heads=${HG_HEAD}` }), 'repeated-argument'],
    ['hg cmd among the header arguments', hg(`cmd=getbundle&heads=${HG_HEAD}`), 'ambiguous-command'],
    ['hg cmd twice', hg(`heads=${HG_HEAD}`, {}, { query: 'cmd=getbundle&cmd=getbundle' }), 'ambiguous-command'],
    ['hg cmd spelt CMD', hg(`heads=${HG_HEAD}`, {}, { query: 'CMD=getbundle' }), 'ambiguous-command'],
    ['hg cmd percent-encoded', hg(`heads=${HG_HEAD}`, {}, { query: '%63md=getbundle' }), 'ambiguous-command'],
    ['hg query with ; separators', hg(`heads=${HG_HEAD}`, {}, { query: 'cmd=getbundle;cg=1' }), 'malformed-arguments'],
    ['hg header arguments with a space (two headers joined)', hg(`heads=${HG_HEAD}, heads=${HG_HEAD}`), 'malformed-arguments'],
    ['hg header arguments with a stray %', hg(`heads=${HG_HEAD}&x=%zz`), 'malformed-arguments'],
    ['hg bare argument name', hg(`heads=${HG_HEAD}&cg`), 'malformed-arguments'],
    ['hg postargs and header arguments', hg(`heads=${HG_HEAD}`, { 'x-hgargs-post': '4' }, { method: 'POST', body: Buffer.from('cg=1') }), 'ambiguous-arguments'],
    ['hg postargs longer than the body', hg('', { 'x-hgarg-1': undefined, 'x-hgargs-post': '99' }, { method: 'POST', body: Buffer.from('cg=1') }), 'malformed-arguments'],
    ['hg postargs length not a number', hg('', { 'x-hgarg-1': undefined, 'x-hgargs-post': '+4' }, { method: 'POST', body: Buffer.from('cg=1') }), 'malformed-arguments'],
    ['hg postargs in a body not held', hg('', { 'x-hgarg-1': undefined, 'x-hgargs-post': '4', 'content-length': '4' }, { method: 'POST' }), 'body-not-held'],
    ['hg header arguments past the bound', hg(`heads=${HG_HEAD}&x=${'y'.repeat(100)}`), 'malformed-arguments', { maxDecodedBytes: 64 }],
  ];
  for (const [label, request, reason, limits] of cases) {
    assert.deepEqual(keyOf(request, limits), { vcs: request.path.startsWith('/demo-git') ? 'git' : 'hg', share: false, reason }, label);
  }
});

test('requests outside the clone protocols\' data phase are not counted at all', () => {
  const cases: Array<[string, CloneRequest]> = [
    ['git ref advertisement', git(undefined, {}, { method: 'GET', path: '/demo-git/info/refs', query: 'service=git-upload-pack' })],
    ['git push', git(REAL_V0_CLONE, { 'content-type': 'application/x-git-receive-pack-request' }, { path: '/demo-git/git-receive-pack' })],
    ['upload-pack with another content type', git(REAL_V0_CLONE, { 'content-type': 'application/octet-stream' })],
    ['upload-pack with a content type git http-backend refuses', git(REAL_V0_CLONE, { 'content-type': `${GIT_TYPE}; charset=utf-8` })],
    ['upload-pack without a content type', git(REAL_V0_CLONE, { 'content-type': undefined })],
    ['upload-pack by GET', git(undefined, {}, { method: 'GET' })],
    ['upload-pack of no repository', git(REAL_V0_CLONE, {}, { path: '/git-upload-pack' })],
    ['hg capabilities', hg('', {}, { query: 'cmd=capabilities' })],
    ['hg batch', hg('cmds=heads+%3Bknown+nodes%3D', {}, { query: 'cmd=batch' })],
    ['hg repository page', hg('', {}, { query: '' })],
    ['hg getbundle by PUT', hg(realHgArgs(NULL_NODE), {}, { method: 'PUT' })],
  ];
  for (const [label, request] of cases) assert.equal(keyOf(request), undefined, label);
});

test('what does not change the answer does not change the key', () => {
  const wantLines = (oids: string[], capabilities: string) => oids.map((oid, index) => `want ${oid}${index === 0 ? ` ${capabilities}` : ''}\n`);
  const groups: Array<[string, CloneRequest[]]> = [
    ['the same request twice', [git(REAL_V0_CLONE), git(REAL_V0_CLONE)]],
    [
      'wants in another order, repeated; capabilities in another order, on another want line',
      [
        git(v0(...wantLines([OID_A, OID_B], 'thin-pack ofs-delta'), 'done')),
        git(v0(`want ${OID_B} ofs-delta`, `want ${OID_A}`, `want ${OID_B} thin-pack`, 'done')),
      ],
    ],
    [
      'another agent and session id, lines without their LF',
      [git(v0(`want ${OID_A} ofs-delta agent=git/2.39.5 session-id=1`, 'done\n')), git(v0(`want ${OID_A}\n`, `want ${OID_A} agent=git/2.47.0 ofs-delta`, 'done'))],
    ],
    [
      'v2: wants in another order, another agent',
      [gitV2(v2(['agent=git/1', 'object-format=sha1'], [`want ${OID_A}`, `want ${OID_B}`, 'done'])), gitV2(v2(['object-format=sha1', 'agent=git/2'], [`want ${OID_B}`, 'done', `want ${OID_A}`]))],
    ],
    [
      'plain, gzip, x-gzip and deflate',
      [
        git(REAL_V0_CLONE),
        git(zlib.gzipSync(REAL_V0_CLONE), { 'content-encoding': 'gzip' }),
        git(zlib.gzipSync(REAL_V0_CLONE), { 'content-encoding': 'x-gzip' }),
        git(zlib.deflateSync(REAL_V0_CLONE), { 'content-encoding': 'Deflate' }),
        git(REAL_V0_CLONE, { 'content-encoding': 'identity' }),
      ],
    ],
    ['the Host header\'s case', [git(REAL_V0_CLONE, { host: 'Example.ORG' }), git(REAL_V0_CLONE, { host: 'example.org' })]],
    ['the same credentials', [git(REAL_V0_CLONE, { authorization: 'Basic dXNlcjpw', cookie: 'a=1' }), git(REAL_V0_CLONE, { authorization: 'Basic dXNlcjpw', cookie: 'a=1' })]],
    ['client headers that do not reach the answer', [git(REAL_V0_CLONE, { 'user-agent': 'git/2.39.5' }), git(REAL_V0_CLONE, { 'user-agent': 'git/2.47.0', 'x-forwarded-for': '192.0.2.1' })]],
    [
      'hg: arguments in another order, heads in another order, split over two headers',
      [
        hg(`cg=1&common=${NULL_NODE}&heads=${HG_HEAD}+${OID_A}`),
        hg(`heads=${OID_A}+${HG_HEAD}&cg=1&common=${NULL_NODE}`),
        hg('', { 'x-hgarg-1': `heads=${OID_A}%20${HG_HEAD}&cg`, 'x-hgarg-2': `=1&common=${NULL_NODE}` }),
      ],
    ],
  ];
  for (const [label, requests] of groups) {
    const keys = new Set(requests.map(sharedKey));
    assert.equal(keys.size, 1, label);
  }
});

test('whatever could change the answer changes the key', () => {
  const variants: Array<[string, CloneRequest]> = [
    ['git v0 clone', git(REAL_V0_CLONE)],
    ['another want (a new commit)', git(REAL_V0_CLONE.replace('847c75bb004d5dcceeb7b6d0b860914da16e45c9', OID_A))],
    ['one want more', git(REAL_V0_CLONE.replace('00000009done', `${pktLine(`want ${OID_A}\n`)}00000009done`))],
    ['a capability less', git(REAL_V0_CLONE.replace('00a4want', '009awant').replace(' thin-pack', ''))],
    ['a depth', git(REAL_V0_CLONE.replace('00000009done', `${pktLine('deepen 1')}00000009done`))],
    ['protocol v1', git(REAL_V0_CLONE, { 'git-protocol': 'version=1' })],
    ['the same wants over protocol v2', gitV2(REAL_V2_CLONE)],
    ['v2 with a depth', gitV2(REAL_V2_CLONE.replace('0009done', `${pktLine('deepen 1')}0009done`))],
    ['v2 with another object format', gitV2(REAL_V2_CLONE.replace('0016object-format=sha1', '0018object-format=sha256'))],
    ['another host', git(REAL_V0_CLONE, { host: 'example.net' })],
    ['another repository', git(REAL_V0_CLONE, {}, { path: '/other/git-upload-pack' })],
    ['a query string', git(REAL_V0_CLONE, {}, { query: 'x=1' })],
    ['an Authorization header', git(REAL_V0_CLONE, { authorization: 'Basic dXNlcjpw' })],
    ['another Authorization header', git(REAL_V0_CLONE, { authorization: 'Basic dXNlcjpx' })],
    ['a Cookie header', git(REAL_V0_CLONE, { cookie: 'session=1' })],
    ['another Cookie header', git(REAL_V0_CLONE, { cookie: 'session=2' })],
    ['another Accept-Encoding (the worker may compress for it)', git(REAL_V0_CLONE, { 'accept-encoding': 'identity' })],
    ['hg clone', hg(realHgArgs(NULL_NODE))],
    ['hg clone of other heads', hg(realHgArgs(NULL_NODE).replace(HG_HEAD, OID_A))],
    ['hg clone with other bundle capabilities', hg(realHgArgs(NULL_NODE).replace('stream%253Dv2', 'stream%253Dv1'))],
    ['hg clone with other protocol capabilities', hg(realHgArgs(NULL_NODE), { 'x-hgproto-1': '0.1 0.2 comp=zlib,none' })],
    ['hg clone without bookmarks', hg(realHgArgs(NULL_NODE).replace('bookmarks=1&', ''))],
    ['hg clone with credentials', hg(realHgArgs(NULL_NODE), { authorization: 'Basic dXNlcjpw' })],
    ['hg clone by POST', hg(realHgArgs(NULL_NODE), {}, { method: 'POST' })],
    ['hg clone of another repository', hg(realHgArgs(NULL_NODE), {}, { path: '/other-hg' })],
  ];
  const keys = variants.map(([label, request]) => [label, sharedKey(request)] as const);
  for (const [index, [label, key]] of keys.entries()) {
    const same = keys.find(([, other], otherIndex) => otherIndex !== index && other === key);
    assert.equal(same, undefined, `${label} shares its key with ${same?.[0]}`);
  }
});

test('mangled real bodies never make the reader fail: each one has a key or a reason', () => {
  const random = new SeededRandom(21);
  const bodies = [REAL_V0_CLONE, REAL_V2_CLONE, REAL_V2_SHALLOW_CLONE, REAL_V2_LS_REFS].map((body) => Buffer.from(body, 'latin1'));
  for (let round = 0; round < 5000; round++) {
    const body = Buffer.from(random.pick(bodies));
    for (let edits = 1 + random.int(4); edits > 0; edits--) {
      const at = random.int(body.length);
      body[at] = random.pick([0, 10, 48, 0x30 + random.int(10), 0x61 + random.int(6), random.int(256)]);
    }
    const cut = random.int(4) === 0 ? body.subarray(0, random.int(body.length)) : body;
    const headers: IncomingHttpHeaders = random.int(2) === 0 ? { 'git-protocol': 'version=2' } : {};
    // undefined here would mean a reader threw: a git upload-pack POST is always counted
    assert.notEqual(keyOf(git(cut, headers)), undefined, `round ${round}: ${JSON.stringify(cut.toString('latin1'))}`);
  }
});
