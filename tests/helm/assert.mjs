// Assertions on what matters in a rendered stream (chart or kustomize), beyond schema validity.
// usage: node assert.mjs FILE --addr HOST:PORT --native true|false [--env K=V,…] [--values VALUES.yaml] [--chart]
//   --env:    the sidecar's env has these values
//   --values: the passwords in it (externalRedis.password, the url's) must appear nowhere in plain
//   --chart:  chart-only objects are expected too (checksum annotation, helm test pod)
// Prints one line per failed assertion; exit 0 only if all hold.
import { readFileSync } from "node:fs";
import yaml from "js-yaml";
import { loadObjects, describe, podSpec, findSidecar } from "./lib.mjs";

const args = process.argv.slice(2);
const file = args.shift();
const opt = {};
while (args.length) {
  const k = args.shift();
  opt[k.replace(/^--/, "")] = k === "--chart" ? true : args.shift();
}
const failures = [];
const check = (ok, what) => {
  if (!ok) failures.push(what);
};

const raw = readFileSync(file, "utf8");
const objects = loadObjects(file);
const secretish = /(PASSWORD|TOKEN|SECRET|AUTH)$/; // REDIS_PASSWORD, …; not *_FILE or *_DIR
// Settings whose names end like a secret's but whose values are modes, not secrets.
const notSecret = new Set(["REDIS_SIDECAR_CLIENT_AUTH", "REDIS_IAM_AUTH"]);

// Secrets: known passwords never appear in plain text (only base64 in a Secret's data).
if (opt.values) {
  const v = yaml.load(readFileSync(opt.values, "utf8")) ?? {};
  const r = v.externalRedis ?? {};
  const pw = [r.password, (r.url ?? "").match(/^rediss?:\/\/[^:@/]*:([^@/]*)@/)?.[1]].filter((p) => p);
  for (const p of pw) check(!raw.includes(p), `the password appears in plain text in the rendered output`);
}

const workloads = objects.filter((o) => podSpec(o) && o.kind !== "Service");
check(workloads.length > 0, "no workload with a pod spec rendered");
for (const w of workloads) {
  const spec = podSpec(w);
  const all = [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
  const where = describe(w);
  for (const c of all) {
    for (const e of c.env ?? []) {
      check(!e.valueFrom?.secretKeyRef, `${where}/${c.name}: env ${e.name} reads a Secret into the environment`);
      check(!(secretish.test(e.name) && !notSecret.has(e.name) && !e.name.endsWith("_FILE") && "value" in e),
        `${where}/${c.name}: env ${e.name} carries a secret value`);
      check(!/^rediss?:\/\/[^/]*@/.test(e.value ?? ""), `${where}/${c.name}: env ${e.name} is a URL with credentials`);
    }
    // The hardened security context, on every container (sidecar, demo app, test pod).
    const sc = c.securityContext ?? {};
    check(sc.runAsNonRoot === true, `${where}/${c.name}: runAsNonRoot is not true`);
    check(sc.readOnlyRootFilesystem === true, `${where}/${c.name}: readOnlyRootFilesystem is not true`);
    check(sc.allowPrivilegeEscalation === false, `${where}/${c.name}: allowPrivilegeEscalation is not false`);
    check(sc.privileged !== true, `${where}/${c.name}: privileged`);
    check((sc.capabilities?.drop ?? []).includes("ALL"), `${where}/${c.name}: capabilities not all dropped`);
    check(!(sc.capabilities?.add ?? []).length, `${where}/${c.name}: capabilities added`);
  }
  const env = (c) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));

  if (w.kind === "Pod") {
    // The helm test pod: runs `check` with the sidecar's settings.
    const c = spec.containers[0];
    check(JSON.stringify(c.args) === '["check"]', `${where}: the test pod does not run "check"`);
    check(env(c).REDIS_ADDR === opt.addr, `${where}: REDIS_ADDR is ${env(c).REDIS_ADDR}, want ${opt.addr}`);
    continue;
  }
  const found = findSidecar(spec);
  check(found, `${where}: no redis-sidecar container`);
  if (!found) continue;
  const { container: s, init } = found;
  const e = env(s);

  check(/^([^:/@[\]\s]+|\[[0-9a-fA-F:.]+\]):[0-9]{1,5}$/.test(e.REDIS_ADDR ?? ""), `${where}: REDIS_ADDR "${e.REDIS_ADDR}" is not host:port`);
  check(e.REDIS_ADDR === opt.addr, `${where}: REDIS_ADDR is ${e.REDIS_ADDR}, want ${opt.addr}`);
  for (const kv of (opt.env ?? "").split(",").filter((s) => s)) {
    const [k, ...rest] = kv.split("=");
    check(e[k] === rest.join("="), `${where}: env ${k} is ${e[k]}, want ${rest.join("=")}`);
  }
  for (const bad of ["REDIS_URL", "REDIS_PASSWORD", "ELASTICACHE_AUTH_TOKEN"]) check(!(bad in e), `${where}: env ${bad} is set`);

  // Native sidecar vs regular container with a preStop drain.
  if (opt.native === "true") {
    check(init, `${where}: the sidecar is not an init container`);
    check(s.restartPolicy === "Always", `${where}: the native sidecar's restartPolicy is not Always`);
  } else {
    check(!init, `${where}: the sidecar is an init container`);
    check(s.restartPolicy === undefined, `${where}: a regular container with a restartPolicy`);
    check(s.lifecycle?.preStop, `${where}: the regular sidecar has no preStop drain`);
  }

  // Probes: right paths, on the admin port the binary listens on.
  const httpPort = Number((e.REDIS_SIDECAR_HTTP_ADDR ?? "0.0.0.0:9090").split(":").pop());
  const ports = Object.fromEntries((s.ports ?? []).map((p) => [p.name, p.containerPort]));
  for (const [probe, path] of [["startupProbe", "/startupz"], ["readinessProbe", "/readyz"], ["livenessProbe", "/livez"]]) {
    const g = s[probe]?.httpGet;
    check(g?.path === path, `${where}: ${probe} path is ${g?.path}, want ${path}`);
    const port = typeof g?.port === "string" ? ports[g.port] : g?.port;
    check(port === httpPort, `${where}: ${probe} port ${g?.port} is not the admin port ${httpPort}`);
  }
  check(s.resources?.requests?.cpu && s.resources?.requests?.memory && s.resources?.limits?.memory,
    `${where}: the sidecar lacks resource requests or a memory limit`);

  // Secret files: the secrets dir is a mounted volume.
  if (e.REDIS_SIDECAR_SECRETS_DIR) {
    const m = (s.volumeMounts ?? []).find((m) => m.mountPath === e.REDIS_SIDECAR_SECRETS_DIR);
    check(m && m.readOnly === true, `${where}: REDIS_SIDECAR_SECRETS_DIR is not a read-only mount`);
    check(m && (spec.volumes ?? []).some((v) => v.name === m.name), `${where}: the secrets volume is missing`);
  }
  if (opt.chart) {
    const ann = w.spec?.template?.metadata?.annotations ?? {};
    check(/^[0-9a-f]{64}$/.test(ann["checksum/redis-sidecar-secret"] ?? ""), `${where}: no checksum/redis-sidecar-secret pod annotation`);
  }
}
if (opt.chart) {
  check(objects.some((o) => o.kind === "Pod" && o.metadata?.annotations?.["helm.sh/hook"] === "test"), "no helm test pod");
}
for (const f of failures) console.error(`${file}: ${f}`);
process.exit(failures.length ? 1 : 0);
