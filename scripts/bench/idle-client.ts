// The benchmark's idle-connection client: opens many keep-alive connections to a proxy, sends one
// small request on each, and holds them all open and silent; on request it sends a second request on
// every one, to show the proxy kept each of them. Run as its own process (it needs one fd a connection):
//
//   bun scripts/bench/idle-client.ts URL COUNT
//
// stdout, one JSON line each (IdleReport): once every connection got its first answer (or failed);
// then, after each line "again" on stdin, once every open connection got its second answer. Closes
// everything and exits when stdin ends.
import type { Socket } from "bun";
import { lines } from "./procs.ts";
import { SMALL_REQUEST } from "./loadgen.ts";
import { HttpResponseParser } from "./sse.ts";

/** What a phase of the idle client saw. */
export interface IdleReport {
  phase: "held" | "again";
  /** Connections asked for. */
  count: number;
  /** Connections open now. */
  open: number;
  /** Requests of this phase answered 200. */
  answered: number;
  /** Connections the other side closed (or that failed) so far. */
  closed: number;
  /** ms the phase took. */
  ms: number;
  /** The first few problems. */
  errors: string[];
}

/**
 * How many connects, and requests, may be under way at once: a burst of thousands overflows the listen
 * backlog, and memproxy answers 503 beyond its limit of requests at once (4,096 by default).
 */
const AT_ONCE = 256;

/** The request sent on each connection, kept alive. */
export function idleRequest(host: string): string {
  const headers = Object.entries(SMALL_REQUEST.headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  return `POST ${SMALL_REQUEST.path} HTTP/1.1\r\nHost: ${host}\r\n${headers}Content-Length: ${Buffer.byteLength(SMALL_REQUEST.body)}\r\n\r\n${SMALL_REQUEST.body}`;
}

interface Conn {
  socket?: Socket<undefined>;
  parser?: HttpResponseParser;
  /** Ends the request under way: `lost` when the connection went first. */
  answered?: (lost?: boolean) => void;
  closed: boolean;
}

/** Holds `count` connections to `url`; reports on stdout as described above. */
export async function holdConnections(url: string, count: number, out: (r: IdleReport) => void, commands: AsyncIterable<string>): Promise<void> {
  const { hostname, port } = new URL(url);
  const request = idleRequest(`${hostname}:${port}`);
  const conns: Conn[] = [];
  const errors: string[] = [];
  let closed = 0;
  const problem = (text: string) => {
    if (errors.length < 10) errors.push(text);
  };

  /** Sends one request on `c`; resolves true on a 200 answer, false when the connection failed or closed first. */
  const ask = (c: Conn) =>
    new Promise<boolean>((resolve) => {
      if (c.closed || !c.socket) return resolve(false);
      c.parser = new HttpResponseParser();
      c.answered = (lost) => {
        c.answered = undefined;
        const ok = !lost && c.parser!.status === 200;
        if (!lost && !ok) problem(`status ${c.parser!.status}`);
        resolve(ok);
      };
      c.socket.write(request);
    });

  const connect = (c: Conn) =>
    new Promise<boolean>((resolve) => {
      const settle = (ok: boolean) => {
        const r = resolve;
        resolve = () => {};
        r(ok);
      };
      const lost = () => {
        if (!c.closed) {
          c.closed = true;
          closed++;
        }
        c.answered?.(true);
        settle(false);
      };
      Bun.connect({
        hostname,
        port: Number(port),
        socket: {
          open(s) {
            c.socket = s;
            settle(true);
          },
          data(_s, bytes) {
            if (!c.parser || !c.answered) return problem("bytes with no request asked");
            try {
              c.parser.feed(bytes.toString("latin1"));
            } catch (err) {
              problem(String(err));
            }
            if (c.parser.done) c.answered();
          },
          close: lost,
          error(_s, err) {
            problem(String(err));
            lost();
          },
          connectError(_s, err) {
            problem(`cannot connect: ${err.message}`);
            lost();
          },
        },
      }).catch((err) => {
        problem(`cannot connect: ${err}`);
        lost();
      });
    });

  // Phase 1: open and ask once, at most AT_ONCE connects at a time.
  const t0 = performance.now();
  let next = 0;
  let answered = 0;
  const worker = async () => {
    while (next < count) {
      const c: Conn = { closed: false };
      conns[next++] = c;
      if ((await connect(c)) && (await ask(c))) answered++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(AT_ONCE, count) }, worker));
  const open = () => conns.filter((c) => !c.closed).length;
  out({ phase: "held", count, open: open(), answered, closed, ms: performance.now() - t0, errors: [...errors] });

  for await (const line of commands) {
    if (line.trim() !== "again") continue;
    const t1 = performance.now();
    errors.length = 0;
    let i = 0;
    let again = 0;
    const asker = async () => {
      while (i < conns.length) if (await ask(conns[i++]!)) again++;
    };
    await Promise.all(Array.from({ length: Math.min(AT_ONCE, conns.length) }, asker));
    out({ phase: "again", count, open: open(), answered: again, closed, ms: performance.now() - t1, errors: [...errors] });
  }
  for (const c of conns) c.socket?.end();
}

if (import.meta.main) {
  const [url, count] = [Bun.argv[2], Number(Bun.argv[3])];
  if (!url || !(count > 0)) {
    console.error("usage: bun scripts/bench/idle-client.ts URL COUNT");
    process.exit(2);
  }
  await holdConnections(url, count, (r) => process.stdout.write(JSON.stringify(r) + "\n"), lines(Bun.stdin.stream()));
  process.exit(0);
}
