// The benchmark's streaming client: opens N concurrent SSE streams on raw sockets (so each socket
// read is seen as it happens), and measures each event's arrival delay, order and batching.
// `bun scripts/bench/sse-client.ts --url http://127.0.0.1:PORT [--streams 100] [--events 200] [--interval-ms 10] [--ramp-ms 0]`
// prints one JSON object (SseResult) on stdout.
// `bun scripts/bench/sse-client.ts --serve` runs one SseRun (a JSON line) per line read from stdin and
// answers each with one SseResult line: the bench keeps one warm client for all its runs.
import { parseArgs } from "node:util";
import { lines } from "./procs.ts";
import { batchedInRead, HttpResponseParser, SseSplitter } from "./sse.ts";
import { percentile, sortedSamples } from "./stats.ts";

/** What one streaming run measured. */
export interface SseResult {
  streams: number;
  eventsPerStream: number;
  intervalMs: number;
  /** Events received in all; streams × events when nothing was lost. */
  received: number;
  /** Arrival time minus send time, ms. */
  delayP50: number;
  delayP99: number;
  delayMax: number;
  /** Events that arrived after an event with a higher index of the same stream, or twice. */
  outOfOrder: number;
  /** Events held back to travel in one read with a later event (see batchedInRead). */
  batched: number;
  /** From the first connect to the last stream's end, ms. */
  totalMs: number;
  /** Problems: failed connections, bad statuses, incomplete streams. */
  errors: string[];
  /** The most streams open at once. */
  maxOpen: number;
  /** Per second of the run (by arrival): events, events later than `lateMs`, the longest delay (ms). */
  timeline: { events: number; late: number; maxMs: number }[];
}

/** The delay past which an event counts as late in the timeline. */
export const LATE_MS = 5;

const now = () => performance.timeOrigin + performance.now();

/** One run: `streams` concurrent streams of `events` events, `intervalMs` apart, through `url`. */
export interface SseRun {
  url: string;
  streams: number;
  events: number;
  intervalMs: number;
  userAgent: string;
  /** Streams open one after another over this many ms (stream k at k/streams of it); 0: all at once. */
  rampMs?: number;
}

/** Runs the streams and resolves with the measurements. */
export async function runSse(opts: SseRun): Promise<SseResult> {
  const { hostname, port, pathname } = new URL("/v1/chat/completions", opts.url);
  const delays = new Float64Array(opts.streams * opts.events);
  const arrivals = new Float64Array(opts.streams * opts.events);
  let received = 0;
  let outOfOrder = 0;
  let batched = 0;
  let open = 0;
  let maxOpen = 0;
  const errors: string[] = [];
  const start = now();
  const rampMs = opts.rampMs ?? 0;

  const one = (k: number) =>
    new Promise<void>((resolve) => {
      const body = JSON.stringify({
        model: "bench-model",
        stream: true,
        messages: [{ role: "user", content: "Count slowly." }],
        bench: { events: opts.events, interval_ms: opts.intervalMs, offset_ms: (k * opts.intervalMs) / opts.streams, stream: k },
      });
      const request =
        `POST ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUser-Agent: ${opts.userAgent}\r\n` +
        `Content-Type: application/json\r\nAccept: text/event-stream\r\nAuthorization: Bearer sk-bench\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
      const http = new HttpResponseParser();
      const splitter = new SseSplitter();
      let next = 0;
      let finished = false;
      let opened = false;
      const finish = (problem?: string) => {
        if (finished) return;
        finished = true;
        if (opened) open--;
        if (problem) errors.push(`stream ${k}: ${problem}`);
        else if (next !== opts.events) errors.push(`stream ${k}: ${next} of ${opts.events} events`);
        resolve();
      };
      const connect = () =>
        Bun.connect({
          hostname,
          port: Number(port),
          socket: {
            open(s) {
              opened = true;
              maxOpen = Math.max(maxOpen, ++open);
              s.write(request);
            },
            data(s, bytes) {
              const arrived = now();
              let text: string;
              try {
                text = http.feed(bytes.toString("latin1"));
              } catch (err) {
                s.end();
                return finish(String(err));
              }
              if (http.status && http.status !== 200) {
                s.end();
                return finish(`status ${http.status}`);
              }
              const sentAts: number[] = [];
              for (const data of splitter.push(text)) {
                if (data === "[DONE]") {
                  s.end();
                  finish();
                  continue;
                }
                const ev = JSON.parse(data) as { i: number; t: number };
                if (ev.i !== next) outOfOrder++;
                next = Math.max(next, ev.i + 1);
                if (received < delays.length) {
                  arrivals[received] = arrived;
                  delays[received++] = arrived - ev.t;
                }
                sentAts.push(ev.t);
              }
              batched += batchedInRead(sentAts, opts.intervalMs);
              if (http.done) finish();
            },
            close() {
              finish(next === opts.events ? undefined : "connection closed early");
            },
            error(_s, err) {
              finish(String(err));
            },
            connectError(_s, err) {
              finish(`cannot connect: ${err.message}`);
            },
          },
        }).catch((err) => finish(`cannot connect: ${err}`));
      if (rampMs > 0 && k > 0) setTimeout(connect, (k * rampMs) / opts.streams);
      else connect();
    });

  const deadline = rampMs + opts.events * opts.intervalMs + 30_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(() => (errors.push(`did not finish within ${deadline} ms`), resolve()), deadline)));
  await Promise.race([Promise.all(Array.from({ length: opts.streams }, (_, k) => one(k))), timeout]);
  clearTimeout(timer);
  const totalMs = now() - start;
  const sorted = sortedSamples(delays.subarray(0, received));
  return {
    streams: opts.streams,
    eventsPerStream: opts.events,
    intervalMs: opts.intervalMs,
    received,
    delayP50: percentile(sorted, 50),
    delayP99: percentile(sorted, 99),
    delayMax: percentile(sorted, 100),
    outOfOrder,
    batched,
    totalMs,
    errors: errors.slice(0, 10),
    maxOpen,
    timeline: timeline(arrivals.subarray(0, received), delays.subarray(0, received), start),
  };
}

/** Events per second of arrival since `start`: how many, how many later than LATE_MS, the longest delay. */
export function timeline(arrivals: ArrayLike<number>, delays: ArrayLike<number>, start: number): SseResult["timeline"] {
  const out: SseResult["timeline"] = [];
  for (let i = 0; i < arrivals.length; i++) {
    const s = Math.max(0, Math.floor((arrivals[i]! - start) / 1000));
    while (out.length <= s) out.push({ events: 0, late: 0, maxMs: 0 });
    const slot = out[s]!;
    slot.events++;
    if (delays[i]! > LATE_MS) slot.late++;
    slot.maxMs = Math.max(slot.maxMs, Math.round(delays[i]! * 100) / 100);
  }
  return out;
}

const CLAUDE_CODE = "claude-cli/2.1.197 (external, cli)";

/** Answers each SseRun line on stdin with its SseResult line on stdout, until stdin ends. */
async function serve(): Promise<void> {
  for await (const line of lines(Bun.stdin.stream())) {
    if (!line.trim()) continue;
    const run = { userAgent: CLAUDE_CODE, ...(JSON.parse(line) as Partial<SseRun>) } as SseRun;
    process.stdout.write(JSON.stringify(await runSse(run)) + "\n");
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    options: {
      serve: { type: "boolean", default: false },
      url: { type: "string" },
      streams: { type: "string", default: "100" },
      events: { type: "string", default: "200" },
      "interval-ms": { type: "string", default: "10" },
      "ramp-ms": { type: "string", default: "0" },
      "user-agent": { type: "string", default: CLAUDE_CODE },
    },
  });
  if (values.serve) {
    await serve();
    process.exit(0);
  }
  if (!values.url) {
    console.error("sse-client: --url (or --serve) is required");
    process.exit(2);
  }
  const result = await runSse({
    url: values.url,
    streams: Number(values.streams),
    events: Number(values.events),
    intervalMs: Number(values["interval-ms"]),
    rampMs: Number(values["ramp-ms"]),
    userAgent: values["user-agent"]!,
  });
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(0);
}
