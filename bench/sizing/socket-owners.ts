import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

// Which process holds a loopback TCP connection: /proc/net/tcp maps the connection's local port
// to a socket inode, /proc/<pid>/fd to the process holding it. Used to tell which component sent
// a Redis command (MONITOR names the client by address:port only).

/** Local port -> socket inode of every IPv4/IPv6 TCP connection whose remote port is `remotePort`. */
function inodesByLocalPort(remotePort: number): Map<number, string> {
  const found = new Map<number, string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      const localPort = parseInt(fields[1].split(':')[1], 16);
      const peerPort = parseInt(fields[2].split(':')[1], 16);
      if (peerPort === remotePort) found.set(localPort, fields[9]);
    }
  }
  return found;
}

function socketInodes(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        return match ? [match[1]] : [];
      } catch {
        return [];
      }
    });
  } catch {
    return [];
  }
}

/**
 * The owner (a name from `owners`: name -> its pids) of each connection to `remotePort`, by the
 * connection's local port; connections of other processes are left out.
 */
export function connectionOwners(remotePort: number, owners: Map<string, number[]>): Map<number, string> {
  const ownerOfInode = new Map<string, string>();
  for (const [name, pids] of owners) for (const pid of pids) for (const inode of socketInodes(pid)) ownerOfInode.set(inode, name);
  const result = new Map<number, string>();
  for (const [port, inode] of inodesByLocalPort(remotePort)) {
    const owner = ownerOfInode.get(inode);
    if (owner) result.set(port, owner);
  }
  return result;
}
