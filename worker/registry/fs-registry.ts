import { discoverRepo, discoverRepos } from './discover.ts';
import type { RegistryStatus, RepoRecord, RepoRegistry } from './types.ts';

export class FsRepoRegistry implements RepoRegistry {
  private readonly heads = new Map<string, string>();

  constructor(private readonly root: string) {}

  async list(): Promise<RepoRecord[]> {
    return (await discoverRepos(this.root)).map((repo) => ({ ...repo, lastHead: this.heads.get(repo.name) }));
  }

  async get(name: string): Promise<RepoRecord | undefined> {
    const repo = await discoverRepo(this.root, name);
    return repo && { ...repo, lastHead: this.heads.get(name) };
  }

  async recordHead(name: string, head: string): Promise<void> {
    this.heads.set(name, head);
  }

  status(): RegistryStatus {
    return { backend: 'filesystem', degraded: false };
  }

  async close(): Promise<void> {}
}
