/** One `switchyard` command. bin/cli.ts dispatches on a table of these; add a command by adding an entry there. */
export interface Command {
  /** its arguments in the help text, e.g. `<pool> [--no-wait]` */
  args?: string;
  /** one line for the help text */
  summary: string;
  /** resolves to the exit code */
  run(args: string[]): Promise<number> | number;
}

/** Exit code of a command called without the arguments it needs (the help text goes to stderr). */
export const USAGE_EXIT = 2;
