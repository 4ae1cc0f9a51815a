-- wrk script for the benchmark: POSTs a small chat-completion JSON body with a real client's
-- headers, and prints exact results (latency percentiles in microseconds) as one JSON line.
-- BENCH_UA overrides the User-Agent (default: the OpenAI Node SDK, which only the 8th rule of
-- the bench config matches, so the router walks most of its patterns).

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.headers["User-Agent"] = os.getenv("BENCH_UA") or "OpenAI/JS 6.49.0"
wrk.headers["Authorization"] = "Bearer sk-bench-0123456789abcdef"
wrk.headers["X-Stainless-Lang"] = "js"
wrk.headers["X-Stainless-Package-Version"] = "6.49.0"
wrk.body = '{"model":"bench-model","messages":[{"role":"system","content":"You are a helpful assistant."},' ..
  '{"role":"user","content":"Say hello in one short sentence, please."}],"max_tokens":64,"temperature":0.2}'

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
