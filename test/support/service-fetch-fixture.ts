// One HTTP request from a process a test placed (e.g. inside another network namespace): fetch(argv[2], JSON
// of argv[3] as the init), then prints {"status", "body"} as one JSON line.
export {};

const init = process.argv[3] ? JSON.parse(process.argv[3]) : {};
const res = await fetch(process.argv[2]!, init);
process.stdout.write(JSON.stringify({ status: res.status, body: await res.text() }) + "\n");
