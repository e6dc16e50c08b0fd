// Git's pkt-line framing (gitprotocol-common(5)): four hex digits giving the length of the line
// including themselves, then the payload; 0000 is a flush, 0001 a delimiter (protocol v2), 0002 a
// response end. Read from a body held whole, with the work bounded: at most `maxPackets` lines.

export type Packet = { kind: 'data'; text: string } | { kind: 'flush' } | { kind: 'delim' } | { kind: 'response-end' };

export type PacketParse = { ok: true; packets: Packet[] } | { ok: false; reason: string };

/** The longest pkt-line git writes or accepts (LARGE_PACKET_MAX). */
const MAX_PACKET_LENGTH = 65_520;

const SPECIAL: Record<number, Packet> = { 0: { kind: 'flush' }, 1: { kind: 'delim' }, 2: { kind: 'response-end' } };

function lengthAt(body: Buffer, at: number): number | undefined {
  let length = 0;
  for (let index = at; index < at + 4; index++) {
    const digit = Number.parseInt(String.fromCharCode(body[index]), 16);
    if (Number.isNaN(digit)) return undefined;
    length = length * 16 + digit;
  }
  return length;
}

/**
 * Every packet of `body`, each data payload as a latin1 string (one char per byte) without the one
 * trailing LF git strips (PACKET_READ_CHOMP_NEWLINE), so `want x` and `want x\n` read the same.
 * Fails on a length that is not hex, too short (0003), too long or past the end, a NUL in a
 * payload (git's parsers stop at one, so what follows it would be read differently), and on more
 * than `maxPackets` packets.
 */
export function parsePackets(body: Buffer, maxPackets: number): PacketParse {
  const packets: Packet[] = [];
  let at = 0;
  while (at < body.length) {
    if (packets.length >= maxPackets) return { ok: false, reason: 'too-many-lines' };
    if (body.length - at < 4) return { ok: false, reason: 'malformed' };
    const length = lengthAt(body, at);
    if (length === undefined || length === 3 || length > MAX_PACKET_LENGTH || at + Math.max(length, 4) > body.length) {
      return { ok: false, reason: 'malformed' };
    }
    const special = SPECIAL[length];
    if (special) {
      packets.push(special);
      at += 4;
      continue;
    }
    const payload = body.subarray(at + 4, at + length);
    if (payload.includes(0)) return { ok: false, reason: 'malformed' };
    const text = payload.toString('latin1');
    packets.push({ kind: 'data', text: text.endsWith('\n') ? text.slice(0, -1) : text });
    at += length;
  }
  return { ok: true, packets };
}

/** One data pkt-line of `text` (latin1), as a client writes it. */
export function pktLine(text: string): string {
  return (text.length + 4).toString(16).padStart(4, '0') + text;
}
