import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../lib/config.ts';

export interface Asset {
  body: Buffer;
  type: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

// From PROJECT_ROOT, not import.meta.url: production runs this module bundled into dist/.
export const PUBLIC_DIR = path.join(PROJECT_ROOT, 'supervisor', 'dashboard', 'public');
const UPLOT_DIR = path.join(PROJECT_ROOT, 'node_modules', 'uplot', 'dist');

function asset(file: string): Asset {
  return { body: readFileSync(file), type: TYPES[path.extname(file)] ?? 'application/octet-stream' };
}

/**
 * Every file the dashboard serves, read once at start (a few small files), by URL path under
 * /assets/. Nothing outside this map is ever read on a request.
 */
export function loadAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(PUBLIC_DIR)) {
    if (!name.endsWith('.html')) assets.set(`/assets/${name}`, asset(path.join(PUBLIC_DIR, name)));
  }
  assets.set('/assets/vendor/uPlot.js', asset(path.join(UPLOT_DIR, 'uPlot.iife.min.js')));
  assets.set('/assets/vendor/uPlot.css', asset(path.join(UPLOT_DIR, 'uPlot.min.css')));
  return assets;
}

/** An HTML page of public/ with `{{name}}` placeholders filled in (values are escaped). */
export function pageTemplate(name: string): (values: Record<string, string>) => string {
  const text = readFileSync(path.join(PUBLIC_DIR, name), 'utf8');
  return (values) => text.replace(/\{\{(\w+)\}\}/g, (_, key: string) => escapeHtml(values[key] ?? ''));
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}
