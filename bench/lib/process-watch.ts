import { isProcessAlive } from '../../lib/process-alive.ts';
import { processTree } from './proc-stats.ts';

/**
 * Notices processes of a target that ended: the target itself (a crash; under PM2 it would have
 * been restarted) or one of its children (nginx's master replaces a worker that crashed). Each
 * look reports the processes seen at the previous look that are gone, then takes the tree anew.
 */
export class ProcessWatch {
  private known: number[];

  constructor(private readonly root: number | undefined) {
    this.known = root === undefined ? [] : processTree(root);
  }

  get rootAlive(): boolean {
    return this.root !== undefined && isProcessAlive(this.root);
  }

  /** every process of the tree, as of the last look */
  get pids(): number[] {
    return [...this.known];
  }

  /** processes seen at the previous look that are gone now */
  look(): number[] {
    const gone = this.known.filter((pid) => !isProcessAlive(pid));
    this.known = this.rootAlive ? processTree(this.root!) : this.known.filter(isProcessAlive);
    return gone;
  }
}
