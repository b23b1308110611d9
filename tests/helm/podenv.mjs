// Turns the sidecar container of the first workload in a rendered stream into an environment for
// the real binary: prints NAME=VALUE entries separated by NUL bytes.
// usage: node podenv.mjs FILE ROOT [CA_PEM]
//   Volumes are materialized under ROOT: projected/secret sources from the Secrets rendered in FILE
//   (a Secret not rendered, e.g. existingSecret, gets placeholder data; its ca.crt the PEM file
//   CA_PEM), emptyDirs as directories. Values under a mount path are rewritten to point into ROOT.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { loadObjects, podSpec, findSidecar } from "./lib.mjs";

const [file, root, caPem] = process.argv.slice(2);
const objects = loadObjects(file);
const workload = objects.find((o) => o.kind !== "Pod" && podSpec(o) && findSidecar(podSpec(o)));
if (!workload) {
  console.error(`${file}: no workload with a redis-sidecar container`);
  process.exit(1);
}
const spec = podSpec(workload);
const { container } = findSidecar(spec);
const secrets = new Map(objects.filter((o) => o.kind === "Secret").map((o) => [o.metadata.name, o]));

function secretValue(name, key) {
  const s = secrets.get(name);
  if (s?.data?.[key] !== undefined) return Buffer.from(s.data[key], "base64");
  if (s?.stringData?.[key] !== undefined) return Buffer.from(s.stringData[key]);
  if (key.endsWith("ca.crt") && caPem) return readFileSync(caPem);
  return Buffer.from(`placeholder-${name}-${key}\n`);
}

const mounts = [];
for (const m of container.volumeMounts ?? []) {
  const v = (spec.volumes ?? []).find((v) => v.name === m.name);
  if (!v) throw new Error(`volume ${m.name} not found`);
  const dir = join(root, m.mountPath);
  mkdirSync(dir, { recursive: true });
  const sources = v.projected?.sources ?? (v.secret ? [{ secret: { name: v.secret.secretName, items: v.secret.items } }] : []);
  for (const src of sources) {
    if (!src.secret) continue;
    const items = src.secret.items ?? Object.keys(secrets.get(src.secret.name)?.data ?? {}).map((k) => ({ key: k, path: k }));
    for (const it of items) {
      mkdirSync(dirname(join(dir, it.path)), { recursive: true });
      writeFileSync(join(dir, it.path), secretValue(src.secret.name, it.key));
    }
  }
  mounts.push(m.mountPath);
}

const out = [];
for (const e of container.env ?? []) {
  if (e.valueFrom) throw new Error(`env ${e.name}: valueFrom is not supported here`);
  let value = String(e.value ?? "");
  if (mounts.some((p) => value === p || value.startsWith(p.replace(/\/$/, "") + "/"))) value = join(root, value);
  out.push(`${e.name}=${value}`);
}
process.stdout.write(out.map((s) => s + "\0").join(""));
