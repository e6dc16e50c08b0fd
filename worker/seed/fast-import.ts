import { once } from 'node:events';
import type { Writable } from 'node:stream';

export interface Person {
  name: string;
  email: string;
}

export interface FileChange {
  path: string;
  /** undefined deletes the file */
  content?: Buffer | string;
  mode?: '100644' | '100755';
}

export interface CommitSpec {
  branch: string;
  author: Person;
  /** unix seconds */
  time: number;
  message: string;
  /** marks of the parent commits; none for a root commit */
  parents: number[];
  changes: FileChange[];
}

/** Writes a `git fast-import` stream, honouring backpressure from the importer's stdin. */
export class FastImportWriter {
  private nextMark = 1;

  constructor(private readonly out: Writable) {}

  private async write(chunk: Buffer | string): Promise<void> {
    if (!this.out.write(chunk)) await once(this.out, 'drain');
  }

  private async data(content: Buffer | string): Promise<void> {
    const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    await this.write(`data ${bytes.length}\n`);
    await this.write(bytes);
    await this.write('\n');
  }

  /** Returns the mark of the new commit. */
  async commit(spec: CommitSpec): Promise<number> {
    const mark = this.nextMark++;
    const who = `${spec.author.name} <${spec.author.email}> ${spec.time} +0000`;
    await this.write(`commit refs/heads/${spec.branch}\nmark :${mark}\nauthor ${who}\ncommitter ${who}\n`);
    await this.data(spec.message);
    const [first, ...merged] = spec.parents;
    if (first !== undefined) await this.write(`from :${first}\n`);
    for (const parent of merged) await this.write(`merge :${parent}\n`);
    for (const change of spec.changes) {
      if (change.content === undefined) {
        await this.write(`D ${quotePath(change.path)}\n`);
      } else {
        await this.write(`M ${change.mode ?? '100644'} inline ${quotePath(change.path)}\n`);
        await this.data(change.content);
      }
    }
    await this.write('\n');
    return mark;
  }

  async tag(name: string, commitMark: number, tagger: Person, time: number, message: string): Promise<void> {
    await this.write(`tag ${name}\nfrom :${commitMark}\ntagger ${tagger.name} <${tagger.email}> ${time} +0000\n`);
    await this.data(message);
  }

  async end(): Promise<void> {
    await this.write('done\n');
    this.out.end();
  }
}

function quotePath(path: string): string {
  return /^[^"\\\n ]+$/.test(path) ? path : JSON.stringify(path);
}
