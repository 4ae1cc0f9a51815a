// The benchmark's status-page client (--with-page): holds N streams of memproxy's page events
// (GET /ui/api/events, what an open status page listens to) for the whole run, reading everything
// they send, as a browser tab would. Run as its own process:
//
//   bun scripts/bench/page-client.ts URL N
//
// stdout, one JSON line each (PageReport): once every stream answered ("opened"; status 404 means
// this memproxy has no such page: the client then exits); and when stdin ends ("closed"), with what
// arrived, before it exits (or as soon as memproxy ended every stream).
import { lines } from "./procs.ts";

/** The page's event stream. */
export const PAGE_EVENTS_PATH = "/ui/api/events";

/** What the page client saw. */
export interface PageReport {
  phase: "opened" | "closed";
  /** The status of the first answer (all streams ask the same). */
  status: number;
  /** Streams open now. */
  open: number;
  /** Events (blank-line-terminated blocks) and bytes received so far over all streams. */
  events: number;
  bytes: number;
  errors: string[];
}

/** Opens `n` event streams at `base`; reports as described above; resolves when `until` resolves or every stream ended. */
export async function holdPage(base: string, n: number, out: (r: PageReport) => void, until: Promise<unknown>): Promise<void> {
  const stop = new AbortController();
  const errors: string[] = [];
  let open = 0;
  let events = 0;
  let bytes = 0;
  const read = async (res: Response) => {
    open++;
    const dec = new TextDecoder();
    let tail = "";
    try {
      for await (const chunk of res.body!) {
        bytes += chunk.byteLength;
        const text = tail + dec.decode(chunk, { stream: true });
        let at = 0;
        for (let i = text.indexOf("\n\n"); i >= 0; i = text.indexOf("\n\n", at)) {
          events++;
          at = i + 2;
        }
        tail = text.slice(at);
      }
    } catch (err) {
      if (!stop.signal.aborted && errors.length < 10) errors.push(String(err));
    }
    open--;
  };
  const answers = await Promise.all(
    Array.from({ length: n }, () =>
      fetch(base + PAGE_EVENTS_PATH, { headers: { accept: "text/event-stream" }, signal: stop.signal }).catch((err: Error) => {
        if (errors.length < 10) errors.push(String(err));
        return undefined;
      }),
    ),
  );
  const first = answers.find((r) => r);
  const status = first?.status ?? 0;
  const readers = answers.map((res) => {
    if (!res) return Promise.resolve();
    if (res.status !== 200) return res.arrayBuffer().then(() => undefined);
    return read(res);
  });
  out({ phase: "opened", status, open, events, bytes, errors: [...errors] });
  if (status !== 200) return;
  // Until told to stop, or until memproxy ended every stream itself.
  await Promise.race([until, Promise.all(readers)]);
  const report: PageReport = { phase: "closed", status, open, events, bytes, errors: [...errors] };
  stop.abort();
  await Promise.all(readers);
  out(report);
}

if (import.meta.main) {
  const [url, n] = [Bun.argv[2], Number(Bun.argv[3])];
  if (!url || !(n > 0)) {
    console.error("usage: bun scripts/bench/page-client.ts URL N");
    process.exit(2);
  }
  const stdinEnds = (async () => {
    for await (const _ of lines(Bun.stdin.stream()));
  })();
  await holdPage(url, n, (r) => process.stdout.write(JSON.stringify(r) + "\n"), stdinEnds);
  process.exit(0);
}
