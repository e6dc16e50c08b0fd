import { html, type SafeHtml } from '../html.ts';
import { encodePathForUrl } from '../names.ts';
import type { RepoRecord } from '../registry/index.ts';
import type { CommitSummary, PathEntry, RefInfo, RefSet, TreeEntry } from '../vcs/types.ts';
import { layout } from './layout.ts';

export function treeUrl(repo: string, rev: string, path = ''): string {
  return `/${encodeURIComponent(repo)}/tree/${encodeURIComponent(rev)}/${encodePathForUrl(path)}`;
}

export function rawUrl(repo: string, rev: string, path: string): string {
  return `/${encodeURIComponent(repo)}/raw/${encodeURIComponent(rev)}/${encodePathForUrl(path)}`;
}

function formatSize(bytes: number | undefined): string {
  if (bytes === undefined) return '';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function formatDate(iso: string): string {
  return iso.replace('T', ' ').replace(/(:\d\d)(\.\d+)?([+-]\d\d:\d\d|Z)$/, '$1');
}

function cloneCommand(repo: RepoRecord, host: string): string {
  return `${repo.kind === 'git' ? 'git' : 'hg'} clone http://${host}/${repo.name}`;
}

function repoCrumbs(repo: string, rev?: string, path = ''): SafeHtml {
  const parts = path === '' ? [] : path.split('/');
  return html`<nav class="crumbs"><a href="/${encodeURIComponent(repo)}">${repo}</a>${
    rev === undefined
      ? ''
      : html` @ <a href="${treeUrl(repo, rev)}">${rev.length === 40 ? rev.slice(0, 12) : rev}</a>${parts.map(
          (part, i) => html` / <a href="${treeUrl(repo, rev, parts.slice(0, i + 1).join('/'))}">${part}</a>`,
        )}`
  }</nav>`;
}

export function repoListPage(repos: RepoRecord[], host: string): Buffer {
  const rows = repos.map(
    (repo) => html`<tr>
<td><a class="repo" href="/${encodeURIComponent(repo.name)}">${repo.name}</a></td>
<td><span class="kind kind-${repo.kind}">${repo.kind}</span></td>
<td>${repo.description}</td>
<td><code>${cloneCommand(repo, host)}</code></td>
</tr>`,
  );
  return layout(
    'Repositories',
    html`<h1>Repositories</h1>
${repos.length === 0 ? html`<p class="empty">No repositories yet.</p>` : html`<table class="repos"><thead><tr><th>Name</th><th>Kind</th><th>Description</th><th>Clone</th></tr></thead><tbody>${rows}</tbody></table>`}`,
  );
}

function refList(title: string, repo: string, refs: RefInfo[]): SafeHtml {
  if (refs.length === 0) return html``;
  return html`<section class="refs"><h2>${title}</h2><ul>${refs.map(
    (ref) => html`<li><a href="${treeUrl(repo, ref.id)}">${ref.name}</a> <code>${ref.id.slice(0, 12)}</code></li>`,
  )}</ul></section>`;
}

export function commitList(repo: string, commits: CommitSummary[]): SafeHtml {
  return html`<table class="commits"><thead><tr><th>Commit</th><th>Message</th><th>Author</th><th>Date</th></tr></thead><tbody>${commits.map(
    (commit) => html`<tr class="commit">
<td><a class="commit-id" href="${treeUrl(repo, commit.id)}">${commit.id.slice(0, 12)}</a></td>
<td class="subject">${commit.subject}</td>
<td>${commit.author}</td>
<td><time datetime="${commit.date}">${formatDate(commit.date)}</time></td>
</tr>`,
  )}</tbody></table>`;
}

export interface SummaryView {
  repo: RepoRecord;
  host: string;
  defaultRevision: string;
  headId?: string;
  refs: RefSet;
  commits: CommitSummary[];
}

export function summaryPage(view: SummaryView): Buffer {
  const { repo } = view;
  const body = html`<h1>${repo.name} <span class="kind kind-${repo.kind}">${repo.kind}</span></h1>
<p class="description">${repo.description}</p>
<p class="clone"><code>${cloneCommand(repo, view.host)}</code> <button type="button" class="copy" data-copy="${cloneCommand(repo, view.host)}">copy</button></p>
${
  view.headId
    ? html`<p><a class="browse" href="${treeUrl(repo.name, view.defaultRevision)}">Browse files at ${view.defaultRevision}</a></p>
<div class="columns">
<section class="log"><h2>Recent commits</h2>${commitList(repo.name, view.commits)}</section>
<aside>${refList('Branches', repo.name, view.refs.branches)}${refList('Bookmarks', repo.name, view.refs.bookmarks)}${refList('Tags', repo.name, view.refs.tags)}</aside>
</div>`
    : html`<p class="empty">This repository is empty.</p>`
}`;
  return layout(repo.name, body, repoCrumbs(repo.name));
}

function entryRow(repo: string, rev: string, entry: TreeEntry): SafeHtml {
  const icon = entry.type === 'dir' ? '📁' : entry.type === 'link' ? '🔗' : entry.type === 'submodule' ? '📦' : '📄';
  const link = entry.type === 'submodule' ? html`${entry.name}` : html`<a href="${treeUrl(repo, rev, entry.path)}">${entry.name}</a>`;
  const raw = entry.type === 'file' || entry.type === 'link' ? html`<a class="raw" href="${rawUrl(repo, rev, entry.path)}">raw</a>` : '';
  return html`<tr class="entry entry-${entry.type}"><td>${icon} ${link}</td><td class="size">${formatSize(entry.size)}</td><td>${raw}</td></tr>`;
}

export function treePage(repo: string, rev: string, dir: PathEntry): Buffer {
  const parent = dir.path.includes('/') ? dir.path.slice(0, dir.path.lastIndexOf('/')) : '';
  const up = dir.path === '' ? '' : html`<tr class="entry entry-up"><td><a href="${treeUrl(repo, rev, parent)}">..</a></td><td></td><td></td></tr>`;
  const body = html`<h1>${dir.path === '' ? repo : dir.path}</h1>
<table class="tree"><tbody>${up}${(dir.children ?? []).map((entry) => entryRow(repo, rev, entry))}</tbody></table>`;
  return layout(`${dir.path || '/'} at ${rev} · ${repo}`, body, repoCrumbs(repo, rev, dir.path));
}

export interface FileView {
  repo: string;
  rev: string;
  entry: TreeEntry;
  /** text to show inline; undefined for binary or large files */
  text?: string;
  image: boolean;
}

export function filePage(view: FileView): Buffer {
  const { repo, rev, entry } = view;
  const raw = rawUrl(repo, rev, entry.path);
  const content =
    view.text !== undefined
      ? html`<pre class="file"><code>${view.text}</code></pre>`
      : view.image
        ? html`<p><img class="preview" src="${raw}" alt="${entry.name}"></p>`
        : html`<p class="binary">Binary or large file (${formatSize(entry.size)}).</p>`;
  const body = html`<h1>${entry.path}</h1>
<p class="file-meta">${formatSize(entry.size)} · <a class="raw" href="${raw}">raw</a></p>
${content}`;
  return layout(`${entry.path} at ${rev} · ${repo}`, body, repoCrumbs(repo, rev, entry.path));
}

export function errorPage(status: number, title: string, message: string): Buffer {
  return layout(
    title,
    html`<h1>${status} ${title}</h1>
<p class="error">${message}</p>
<p><a href="/">All repositories</a></p>`,
  );
}
