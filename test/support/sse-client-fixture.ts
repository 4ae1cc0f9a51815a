// Opens STREAMS concurrent SSE requests to URL and checks every stream's events arrive complete and in order.
// Run with BUN_CONFIG_MAX_HTTP_REQUESTS raised, or fetch() would queue past 256. Prints one JSON summary line.
export {};

const url = process.env.URL!;
const streams = Number(process.env.STREAMS ?? 500);
const events = Number(process.env.EVENTS ?? 20);

async function one(id: number): Promise<string | null> {
  const res = await fetch(url, { method: "POST", body: JSON.stringify({ stream: true, id }), headers: { "x-memory-user-id": `s${id}` } });
  if (res.status !== 200) return `stream ${id}: status ${res.status}`;
  const text = await res.text();
  const expected = Array.from({ length: events }, (_, i) => `data: {"s":${id},"i":${i}}\n\n`).join("") + "data: [DONE]\n\n";
  return text === expected ? null : `stream ${id}: got ${JSON.stringify(text.slice(0, 200))}`;
}

const results = await Promise.all(Array.from({ length: streams }, (_, i) => one(i).catch((e) => `stream ${i}: ${e}`)));
const errors = results.filter((r) => r !== null);
console.log(JSON.stringify({ streams, ok: streams - errors.length, errors: errors.slice(0, 5) }));
