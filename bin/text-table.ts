import { plain, type Painter, type Style } from './paint.ts';

export interface Column {
  header: string;
  /** numbers read best right-aligned */
  align?: 'left' | 'right';
}

export type Cell = string | { text: string; style?: Style };

const textOf = (cell: Cell) => (typeof cell === 'string' ? cell : cell.text);
const styleOf = (cell: Cell) => (typeof cell === 'string' ? undefined : cell.style);

/**
 * A boxed table in the manner of `pm2 ls`: each column as wide as its widest cell, headers bold.
 * Cells are padded before they are painted, so colour codes never count toward a width.
 */
export function renderTable(columns: Column[], rows: Cell[][], paint: Painter = plain): string {
  const widths = columns.map((column, index) => Math.max(column.header.length, ...rows.map((row) => textOf(row[index] ?? '').length)));
  const rule = (left: string, middle: string, right: string) => `${left}${widths.map((width) => '─'.repeat(width + 2)).join(middle)}${right}`;
  const line = (cells: Cell[], headerStyle?: Style) =>
    `│${columns
      .map((column, index) => {
        const cell = cells[index] ?? '';
        const text = column.align === 'right' ? textOf(cell).padStart(widths[index]) : textOf(cell).padEnd(widths[index]);
        return ` ${paint(text, headerStyle ?? styleOf(cell))} `;
      })
      .join('│')}│`;
  return [
    rule('┌', '┬', '┐'),
    line(columns.map((column) => column.header), 'bold'),
    rule('├', '┼', '┤'),
    ...rows.map((row) => line(row)),
    rule('└', '┴', '┘'),
  ].join('\n');
}
