import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface PortHolder {
  pid: number;
  /** its command line, arguments joined by spaces (shortened) */
  command: string;
}

const TCP_LISTEN = '0A';
const MAX_HOLDERS = 5;
const MAX_COMMAND_CHARS = 300;

/**
 * Inodes of the TCP sockets bound to `port`, from /proc/net/tcp and tcp6: listening ones when
 * there are any (what makes a bind fail with EADDRINUSE), else any socket on that local port.
 */
export function socketInodes(port: number, tables: string[] = readTcpTables()): Set<string> {
  const listening = new Set<string>();
  const other = new Set<string>();
  for (const table of tables) {
    for (const line of table.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      const localPort = Number.parseInt(fields[1].slice(fields[1].lastIndexOf(':') + 1), 16);
      const inode = fields[9];
      if (localPort !== port || inode === '0') continue;
      (fields[3] === TCP_LISTEN ? listening : other).add(inode);
    }
  }
  return listening.size > 0 ? listening : other;
}

function readTcpTables(): string[] {
  return ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((file) => {
    try {
      return [readFileSync(file, 'utf8')];
    } catch {
      return []; // no IPv6, or no procfs
    }
  });
}

function commandLine(pid: string): string {
  try {
    const text = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replaceAll('\0', ' ');
    return text.length > MAX_COMMAND_CHARS ? `${text.slice(0, MAX_COMMAND_CHARS)}...` : text;
  } catch {
    return '(exited)';
  }
}

/**
 * The processes that hold a TCP socket on `port` (Linux /proc: the socket's inode, then every
 * process's open descriptors). Processes of other users cannot be looked into: then the answer is
 * empty although the port is held.
 */
export function findPortHolders(port: number): PortHolder[] {
  const inodes = socketInodes(port);
  if (inodes.size === 0) return [];
  const wanted = new Set([...inodes].map((inode) => `socket:[${inode}]`));
  const holders: PortHolder[] = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // another user's process, or gone
    }
    const holds = fds.some((fd) => {
      try {
        return wanted.has(readlinkSync(`/proc/${pid}/fd/${fd}`));
      } catch {
        return false;
      }
    });
    if (holds) holders.push({ pid: Number(pid), command: commandLine(pid) });
    if (holders.length >= MAX_HOLDERS) break;
  }
  return holders;
}

/** One line for a log or an event: who holds the port. */
export function describeHolders(holders: PortHolder[]): string {
  if (holders.length === 0) return 'a process this user cannot see (another user, or another network namespace)';
  return holders.map((holder) => `pid ${holder.pid} (${holder.command})`).join(', ');
}
