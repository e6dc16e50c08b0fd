import { crc32, deflateSync } from 'node:zlib';
import { FastImportWriter, type FileChange, type Person } from './fast-import.ts';
import { SeededRandom } from '../../lib/seeded-random.ts';

// The demo repository: a few hundred commits over nested directories, a branch merged back, tags
// every 50 commits, a PNG, a random binary and a multi-megabyte text file.

export const DEMO_COMMITS = 300;
const START_TIME = 1_600_000_000;

const PEOPLE: Person[] = [
  { name: 'Ada Lovelace', email: 'ada@example.org' },
  { name: 'Grace Hopper', email: 'grace@example.org' },
  { name: 'Linus Pauling', email: 'linus@example.org' },
  { name: 'Mads K', email: 'mads@example.org' },
];
const DIRECTORIES = ['src', 'src/core', 'src/core/storage', 'src/web', 'src/web/templates', 'docs', 'docs/guide', 'tests', 'tests/unit'];
const WORDS = 'clone fetch stream worker proxy lane pool queue drain recycle branch commit tag bundle pack object ref head'.split(' ');
const VERBS = ['Fix', 'Add', 'Refactor', 'Document', 'Speed up', 'Test', 'Simplify', 'Rename'];

function sentence(random: SeededRandom, words: number): string {
  return Array.from({ length: words }, () => random.pick(WORDS)).join(' ');
}

function sourceFile(random: SeededRandom, path: string): string {
  const lines = [`// ${path}`, ''];
  for (let i = 0; i < 10 + random.int(30); i++) lines.push(`export const ${random.pick(WORDS)}${i} = '${sentence(random, 4)}';`);
  return lines.join('\n') + '\n';
}

/** A valid 64x64 RGB gradient PNG. */
export function gradientPng(size = 64): Buffer {
  const rows: Buffer[] = [];
  for (let y = 0; y < size; y++) {
    const row = Buffer.alloc(1 + size * 3);
    for (let x = 0; x < size; x++) row.set([x * 4, y * 4, 160], 1 + x * 3);
    rows.push(row);
  }
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function largeText(random: SeededRandom, bytes: number): string {
  const lines: string[] = [];
  let size = 0;
  for (let n = 1; size < bytes; n++) {
    const line = `${String(n).padStart(7, '0')} ${sentence(random, 12)} ${random.int(1e9).toString(36)}`;
    lines.push(line);
    size += line.length + 1;
  }
  return lines.join('\n') + '\n';
}

export async function writeDemoHistory(out: FastImportWriter): Promise<void> {
  const random = new SeededRandom(42);
  const files = new Map<string, string>();
  let time = START_TIME;
  const commitOn = async (branch: string, parents: number[], changes: FileChange[], message: string) => {
    time += 600 + random.int(36_000);
    return out.commit({ branch, author: random.pick(PEOPLE), time, message, parents, changes });
  };

  const initial: FileChange[] = [
    { path: 'README.md', content: '# demo\n\nA demo repository seeded by the Switchyard worker.\n' },
    { path: 'assets/logo.png', content: gradientPng() },
    { path: 'assets/random.bin', content: random.bytes(64 * 1024) },
    { path: 'data/large.txt', content: largeText(random, 4 * 1024 * 1024) },
    { path: 'docs/name with spaces.md', content: 'A file whose name has spaces.\n' },
    { path: 'scripts/build.sh', content: '#!/bin/sh\necho build\n', mode: '100755' },
  ];
  let main = await commitOn('main', [], initial, 'Initial import');
  let develop: number | undefined;

  for (let i = 1; i < DEMO_COMMITS; i++) {
    const changes: FileChange[] = [];
    for (let c = 0; c < 1 + random.int(3); c++) {
      const existing = [...files.keys()];
      if (existing.length < 20 || random.next() < 0.3) {
        const path = `${random.pick(DIRECTORIES)}/${random.pick(WORDS)}-${i}.ts`;
        files.set(path, sourceFile(random, path));
        changes.push({ path, content: files.get(path) });
      } else if (random.next() < 0.05) {
        const path = random.pick(existing);
        files.delete(path);
        changes.push({ path });
      } else {
        const path = random.pick(existing);
        files.set(path, files.get(path) + `export const change${i} = '${sentence(random, 3)}';\n`);
        changes.push({ path, content: files.get(path) });
      }
    }
    const message = `${random.pick(VERBS)} ${sentence(random, 3)} (#${i})\n\n${sentence(random, 12)}\n`;
    if (i >= 200 && i < 230) {
      develop = await commitOn('develop', [develop ?? main], changes, message);
    } else if (i === 230 && develop !== undefined) {
      // develop's tree is the merge result (main did not move meanwhile), so it is the first parent
      main = await commitOn('main', [develop, main], changes, `Merge branch 'develop'\n`);
    } else {
      main = await commitOn('main', [main], changes, message);
    }
    if (i % 50 === 0) await out.tag(`v0.${i / 50}`, main, PEOPLE[0], time, `Release 0.${i / 50}\n`);
  }
  await commitOn('stable', [main], [{ path: 'STABLE', content: 'stable line\n' }], 'Start the stable branch');
  await out.end();
}
