import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/**
 * Replaces the "## heading" section of a Markdown file (up to the next "## " heading) with body,
 * appending it if absent and creating the file with `preamble` if missing. Other sections survive.
 */
export function replaceSection(file: string, heading: string, body: string, preamble: string): void {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : `${preamble.trimEnd()}\n`;
  const lines = text.split('\n');
  const start = lines.findIndex((line) => line.trimEnd() === heading);
  const section = [heading, '', ...body.trimEnd().split('\n'), ''];
  if (start === -1) {
    const head = text.trimEnd().split('\n');
    writeFileSync(file, [...head, '', ...section].join('\n'));
    return;
  }
  const next = lines.findIndex((line, index) => index > start && line.startsWith('## '));
  const tail = next === -1 ? [] : lines.slice(next);
  writeFileSync(file, [...lines.slice(0, start), ...section, ...tail].join('\n').trimEnd() + '\n');
}
