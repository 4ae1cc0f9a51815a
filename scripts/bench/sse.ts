// Reading a streamed HTTP/1.1 response off a raw socket: the head, the chunked body, SSE events, and
// the batching check. Pure (no I/O) so that test/scripts/bench.test.ts can check it.

/**
 * Decodes one HTTP/1.1 response fed to it piece by piece, as the socket delivers it. Text is
 * handled as latin1 (one char per byte): the benchmark's events are ASCII.
 */
export class HttpResponseParser {
  status = 0;
  readonly headers = new Map<string, string>();
  /** True once the whole body arrived (final chunk, or Content-Length reached). */
  done = false;
  private head = "";
  private mode: "head" | "chunked" | "length" | "close" = "head";
  private chunk: "size" | "data" | "crlf" | "trailer" = "size";
  private remaining = 0;
  private buf = "";

  /**
   * Feeds the next bytes from the socket.
   * @returns the body text those bytes completed (framing removed).
   */
  feed(raw: string): string {
    if (this.mode === "head") {
      this.head += raw;
      const end = this.head.indexOf("\r\n\r\n");
      if (end < 0) return "";
      raw = this.head.slice(end + 4);
      this.parseHead(this.head.slice(0, end));
      this.head = "";
    }
    if (this.done) return "";
    if (this.mode === "close") return raw;
    if (this.mode === "length") {
      const take = raw.slice(0, this.remaining);
      this.remaining -= take.length;
      if (this.remaining === 0) this.done = true;
      return take;
    }
    return this.feedChunked(raw);
  }

  private parseHead(head: string): void {
    const [statusLine = "", ...lines] = head.split("\r\n");
    this.status = Number(statusLine.split(" ")[1]);
    for (const line of lines) {
      const colon = line.indexOf(":");
      if (colon > 0) this.headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    if (/\bchunked\b/i.test(this.headers.get("transfer-encoding") ?? "")) this.mode = "chunked";
    else if (this.headers.has("content-length")) {
      this.mode = "length";
      this.remaining = Number(this.headers.get("content-length"));
      if (this.remaining === 0) this.done = true;
    } else this.mode = "close";
  }

  private feedChunked(raw: string): string {
    this.buf += raw;
    let out = "";
    for (;;) {
      if (this.chunk === "size") {
        const eol = this.buf.indexOf("\r\n");
        if (eol < 0) break;
        const size = parseInt(this.buf.slice(0, eol).split(";")[0]!, 16);
        if (Number.isNaN(size)) throw new Error(`bad chunk size line ${JSON.stringify(this.buf.slice(0, eol))}`);
        this.buf = this.buf.slice(eol + 2);
        if (size === 0) this.chunk = "trailer";
        else {
          this.remaining = size;
          this.chunk = "data";
        }
      } else if (this.chunk === "data") {
        const take = this.buf.slice(0, this.remaining);
        out += take;
        this.buf = this.buf.slice(take.length);
        this.remaining -= take.length;
        if (this.remaining > 0) break;
        this.chunk = "crlf";
      } else if (this.chunk === "crlf") {
        if (this.buf.length < 2) break;
        this.buf = this.buf.slice(2);
        this.chunk = "size";
      } else {
        const eol = this.buf.indexOf("\r\n");
        if (eol < 0) break;
        const line = this.buf.slice(0, eol);
        this.buf = this.buf.slice(eol + 2);
        if (line === "") {
          this.done = true;
          break;
        }
      }
    }
    return out;
  }
}

/**
 * Splits SSE text into events on blank lines, whatever the chunk boundaries were.
 * `push` returns the `data` of each event the text completed (multi-line data joined with \n).
 */
export class SseSplitter {
  private buf = "";

  push(text: string): string[] {
    this.buf += text;
    const out: string[] = [];
    for (;;) {
      const end = this.buf.indexOf("\n\n");
      if (end < 0) break;
      const block = this.buf.slice(0, end);
      this.buf = this.buf.slice(end + 2);
      const data = block
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(l[5] === " " ? 6 : 5));
      if (data.length) out.push(data.join("\n"));
    }
    return out;
  }
}

/**
 * Counts the events of one socket read that were held back to travel with a later event.
 *
 * The backend stamps each event with its send time and paces events `intervalMs` apart. An event
 * counts as batched when the same read also completed an event sent at least half an interval
 * after it: it waited at the proxy (or in some buffer) for the next one. Events the backend itself
 * sent back to back (a late timer) have nearly equal send times and do not count; a client that
 * fell behind by half an interval would count, which is why the direct path is measured alike.
 * @param sentAts send times (ms) of the events one read completed.
 * @param intervalMs the pacing interval between events of one stream.
 */
export function batchedInRead(sentAts: readonly number[], intervalMs: number): number {
  if (sentAts.length < 2) return 0;
  let last = -Infinity;
  for (const s of sentAts) if (s > last) last = s;
  let held = 0;
  for (const s of sentAts) if (last - s >= intervalMs / 2) held++;
  return held;
}
