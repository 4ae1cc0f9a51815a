// scripts/docker/ and scripts/k8s/: parsed and compared with memproxy's real port, endpoints, flags and config schema.
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { parseAllDocuments } from "yaml";
import pkg from "../../package.json" with { type: "json" };
import { DEFAULT_CONFIG_TEXT, parseConfig } from "../../src/config.ts";
import { ENDPOINTS } from "../../src/endpoints.ts";
import { runToEnd } from "../support/process.ts";

const ROOT = join(import.meta.dir, "..", "..");
const DEFAULT = parseConfig(DEFAULT_CONFIG_TEXT, "default-config.yaml", {});
const DEFAULT_PORT = parseConfig("", "empty.yaml", {}).listen.port;
const METRICS_PATH: string = ENDPOINTS.metrics;

const tmp = mkdtempSync(join(tmpdir(), "memproxy-deploy-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let helpText: Promise<string> | undefined;
/** `memproxy --help`, from the real CLI. */
function help(): Promise<string> {
  helpText ??= (async () => {
    const { stdout, code } = await runToEnd([process.execPath, join(ROOT, "src", "main.ts"), "--help"]);
    if (code !== 0) throw new Error(`memproxy --help exited ${code}`);
    return stdout;
  })();
  return helpText;
}

/** Checks that every --flag in `args` is one memproxy --help lists, and returns the value after `flag`. */
async function checkedArgs(args: string[]) {
  const text = await help();
  for (const a of args.filter((a) => a.startsWith("--"))) expect(text).toContain(`${a} `);
  return (flag: string) => args[args.indexOf(flag) + 1];
}

interface Instruction {
  op: string;
  args: string;
}
/** The Dockerfile as instructions, continuation lines joined, comments dropped. */
function dockerfile(): Instruction[] {
  const text = readFileSync(join(ROOT, "scripts", "docker", "Dockerfile"), "utf8").replace(/\\\n/g, " ");
  return text
    .split("\n")
    .filter((l) => l.trim() && !l.trim().startsWith("#"))
    .map((l) => {
      const [, op, args] = /^\s*(\w+)\s+(.*)$/.exec(l)!;
      return { op: op!.toUpperCase(), args: args!.trim() };
    });
}

describe("scripts/docker/Dockerfile", () => {
  const ins = dockerfile();
  const stages = ins.reduce<Instruction[][]>((acc, i) => (i.op === "FROM" ? [...acc, [i]] : (acc.at(-1)!.push(i), acc)), []);
  const build = stages[0]!;
  const runtime = stages.at(-1)!;

  test("builds with the Bun version the project uses and runs in a small image as a numeric non-root user", () => {
    expect(stages.length).toBe(2);
    expect(build[0]!.args).toBe(`oven/bun:${pkg.devDependencies.bun} AS build`);
    expect(runtime[0]!.args).not.toContain("oven/bun");
    const user = runtime.find((i) => i.op === "USER")!.args;
    expect(user).toMatch(/^[1-9]\d*(:\d+)?$/);
  });

  test("exposes memproxy's default port and starts it with flags memproxy --help lists, on 0.0.0.0 and the copied config", async () => {
    expect(runtime.find((i) => i.op === "EXPOSE")!.args).toBe(String(DEFAULT_PORT));
    const entrypoint: string[] = JSON.parse(runtime.find((i) => i.op === "ENTRYPOINT")!.args);
    const cmd: string[] = JSON.parse(runtime.find((i) => i.op === "CMD")!.args);
    expect(runtime.some((i) => i.op === "COPY" && i.args.endsWith(` ${entrypoint[0]}`))).toBe(true);
    const value = await checkedArgs(cmd);
    expect(value("--host")).toBe("0.0.0.0");
    expect(runtime.some((i) => i.op === "COPY" && i.args.endsWith(` ${value("--config")}`))).toBe(true);
  });

  test("the build stage copies every file the binary is built from", async () => {
    const copied = build.filter((i) => i.op === "COPY").flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    for (const path of copied) expect(existsSync(join(ROOT, path))).toBe(true);
    const result = await Bun.build({ entrypoints: [join(ROOT, "src", "main.ts")], target: "bun", metafile: true, throw: false });
    expect(result.success).toBe(true);
    for (const input of Object.keys(result.metafile!.inputs)) {
      const path = relative(ROOT, resolve(process.cwd(), input));
      if (path.startsWith("node_modules/")) {
        // `bun install --production` installs dependencies only.
        const name = path.split("/")[1]!.startsWith("@") ? path.split("/").slice(1, 3).join("/") : path.split("/")[1]!;
        expect(Object.keys(pkg.dependencies)).toContain(name);
      } else {
        expect(copied.some((c) => path === c || path.startsWith(`${c.replace(/\/$/, "")}/`))).toBe(true);
      }
    }
  });

  test("the image's config is the default rules with LiteLLM's URL from LITELLM_BACKEND_URL", async () => {
    const run = build.find((i) => i.op === "RUN" && i.args.includes("config.yaml"))!;
    // Run the same command on a copy of the build stage's files.
    const dir = join(tmp, "docker-build");
    mkdirSync(join(dir, "src"), { recursive: true });
    mkdirSync(join(dir, "out"));
    copyFileSync(join(ROOT, "src", "default-config.yaml"), join(dir, "src", "default-config.yaml"));
    const { stderr, code } = await runToEnd(["sh", "-c", run.args], { cwd: dir });
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const text = readFileSync(join(dir, "out", "config.yaml"), "utf8");
    const withEnv = parseConfig(text, "image config", { LITELLM_BACKEND_URL: "http://litellm.example:4000" });
    expect(withEnv.backends).toEqual(["http://litellm.example:4000"]);
    expect(parseConfig(text, "image config", {}).backends).toEqual(["http://litellm:4000"]);
    expect(withEnv.routing).toEqual(DEFAULT.routing);
  });
});

describe("scripts/k8s", () => {
  const dir = join(ROOT, "scripts", "k8s");
  const docs = readdirSync(dir)
    .filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
    .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), "utf8")).map((d) => ({ file: f, doc: d.toJS() as any })));
  const byKind = (kind: string) => {
    const found = docs.filter((d) => d.doc?.kind === kind);
    expect(found.length).toBe(1);
    return found[0]!.doc;
  };
  const deployment = byKind("Deployment");
  const service = byKind("Service");
  const configMap = byKind("ConfigMap");
  const pod = deployment.spec.template;
  const container = pod.spec.containers.find((c: any) => c.name === "memproxy");
  const portOf = (p: number | string) => (typeof p === "number" ? p : container.ports.find((cp: any) => cp.name === p)?.containerPort);

  test("kustomization.yaml lists every manifest", () => {
    const kustomization = parseAllDocuments(readFileSync(join(dir, "kustomization.yaml"), "utf8"))[0]!.toJS();
    expect([...kustomization.resources].sort()).toEqual([...new Set(docs.map((d) => d.file))].sort());
  });

  test("the ConfigMap's config is valid and listens on the container port, which the Service targets", () => {
    const mounted = container.volumeMounts.find((m: any) => pod.spec.volumes.find((v: any) => v.name === m.name)?.configMap?.name === configMap.metadata.name);
    expect(mounted).toBeDefined();
    const key = Object.keys(configMap.data).find((k) => container.args.includes(`${mounted.mountPath}/${k}`));
    expect(key).toBeDefined();
    const config = parseConfig(configMap.data[key!], `ConfigMap ${configMap.metadata.name}: ${key}`, {});

    const containerPort = container.ports[0].containerPort;
    expect(containerPort).toBe(DEFAULT_PORT);
    expect(config.listen.port).toBe(containerPort);
    expect(portOf(service.spec.ports[0].targetPort)).toBe(containerPort);
    expect(service.spec.selector).toEqual(pod.metadata.labels);
    // The same rules as memproxy's default, so that the two do not drift apart.
    expect(config.routing).toEqual(DEFAULT.routing);
  });

  test("the container starts memproxy with flags it knows, listening on 0.0.0.0", async () => {
    const value = await checkedArgs(container.args);
    expect(value("--host")).toBe("0.0.0.0");
    expect(container.image).toEndWith(`:${pkg.version}`);
  });

  test("liveness and readiness probes use memproxy's own health endpoints on the container port", () => {
    expect(container.livenessProbe.httpGet.path).toBe(ENDPOINTS.liveness);
    expect(container.readinessProbe.httpGet.path).toBe(ENDPOINTS.readiness);
    expect(portOf(container.livenessProbe.httpGet.port)).toBe(container.ports[0].containerPort);
    expect(portOf(container.readinessProbe.httpGet.port)).toBe(container.ports[0].containerPort);
  });

  test("Prometheus scrapes /metrics on the container port", () => {
    const a = pod.metadata.annotations;
    expect(a["prometheus.io/scrape"]).toBe("true");
    expect(Number(a["prometheus.io/port"])).toBe(container.ports[0].containerPort);
    expect(a["prometheus.io/path"]).toBe(METRICS_PATH);
  });

  test("runs as the image's non-root user with a read-only root file system", () => {
    expect(pod.spec.securityContext.runAsNonRoot).toBe(true);
    const user = dockerfile().filter((i) => i.op === "USER").at(-1)!.args;
    expect(String(pod.spec.securityContext.runAsUser)).toBe(user.split(":")[0]!);
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
  });
});
