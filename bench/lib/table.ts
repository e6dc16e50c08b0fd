export interface Column {
  header: string;
  align?: 'left' | 'right';
}

/** A Markdown table, padded so it also reads well on a terminal. */
export function formatTable(columns: Column[], rows: string[][]): string {
  const widths = columns.map((column, index) => Math.max(column.header.length, 3, ...rows.map((row) => (row[index] ?? '').length)));
  const pad = (text: string, index: number) =>
    columns[index].align === 'right' ? text.padStart(widths[index]) : text.padEnd(widths[index]);
  const line = (cells: string[]) => `| ${cells.map(pad).join(' | ')} |`;
  const rule = `|${columns.map((column, index) => (column.align === 'right' ? `${'-'.repeat(widths[index] + 1)}:` : '-'.repeat(widths[index] + 2))).join('|')}|`;
  return [line(columns.map((column) => column.header)), rule, ...rows.map((row) => line(columns.map((_, index) => row[index] ?? '')))].join('\n');
}

export const fixed = (value: number, digits: number): string => (Number.isFinite(value) ? value.toFixed(digits) : '-');
export const thousands = (value: number): string => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '-');
