export type Style = 'bold' | 'dim' | 'green' | 'yellow' | 'red' | 'cyan';

/** Wraps text in a style; the plain painter returns it as it is. */
export type Painter = (text: string, style: Style | undefined) => string;

const SGR: Record<Style, number> = { bold: 1, dim: 2, red: 31, green: 32, yellow: 33, cyan: 36 };

export const plain: Painter = (text) => text;
export const ansi: Painter = (text, style) => (style ? `\x1b[${SGR[style]}m${text}\x1b[0m` : text);

/** Colour only for a terminal, and never with NO_COLOR set to anything but '' (no-color.org). */
export function painterFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): Painter {
  return stream.isTTY && !env.NO_COLOR ? ansi : plain;
}
