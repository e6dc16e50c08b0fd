/**
 * A one-line-per-step progress display on stderr: "[3/12] nginx: saturation", with a live
 * req/s counter on a terminal.
 */
export class Progress {
  private step = 0;
  private current = '';
  private readonly live = process.stderr.isTTY === true;

  constructor(private readonly total: number) {}

  start(label: string): void {
    this.step += 1;
    process.stderr.write(`[${this.step}/${this.total}] ${label}${this.live ? '' : '\n'}`);
    this.current = label;
  }

  /** live counter for the running step (terminal only) */
  update(detail: string): void {
    if (this.live) process.stderr.write(`\r\x1b[K[${this.step}/${this.total}] ${this.current} ${detail}`);
  }

  done(detail = ''): void {
    if (this.live) process.stderr.write(`\r\x1b[K[${this.step}/${this.total}] ${this.current} ${detail}\n`);
    else if (detail) process.stderr.write(`    ${detail}\n`);
  }

  note(message: string): void {
    process.stderr.write(`${message}\n`);
  }
}
