// ip-hash across processes: a proxy in another process (fresh module state, fresh Math.random)
// sends every client to the same workers, in the same order, as this one.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { PROJECT_ROOT } from '../../lib/config.ts';
import { SeededRandom } from '../../lib/seeded-random.ts';
import { IpHash } from '../../proxy/balancer.ts';
import { Upstream } from '../../proxy/upstream.ts';

const upstreams = [0, 1, 2].map((index) => new Upstream({ pool: 'clone', index, host: '127.0.0.1', port: 9200 + index, concurrency: 1, idleSocketTimeoutMs: 1000 }));

after(() => {
  for (const upstream of upstreams) upstream.close();
});

test('ip-hash: a proxy in another process maps every client exactly as this one does', () => {
  const random = new SeededRandom(5);
  const ips = Array.from({ length: 500 }, () => `${1 + random.int(223)}.${random.int(256)}.${random.int(256)}.${random.int(256)}`);
  const balancer = new IpHash();
  const here = ips.map((ip) => balancer.order(upstreams, ip).map((u) => u.name).join(','));
  const script = `
    import { IpHash } from ${JSON.stringify(path.join(PROJECT_ROOT, 'proxy/balancer.ts'))};
    import { Upstream } from ${JSON.stringify(path.join(PROJECT_ROOT, 'proxy/upstream.ts'))};
    const ups = [0, 1, 2].map((index) => new Upstream({ pool: 'clone', index, host: '127.0.0.1', port: 9200 + index, concurrency: 1, idleSocketTimeoutMs: 1000 }));
    const b = new IpHash();
    const ips = JSON.parse(process.argv[1]);
    process.stdout.write(JSON.stringify(ips.map((ip) => b.order(ups, ip).map((u) => u.name).join(','))));
    for (const u of ups) u.close();
  `;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, JSON.stringify(ips)], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.equal(child.status, 0, `child failed: ${child.stderr} ${child.error ?? ''}`);
  assert.deepEqual(JSON.parse(child.stdout), here);
});
