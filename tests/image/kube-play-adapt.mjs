// Adapts a rendered chart (Deployment + Secrets) to what `podman kube play` 4.3 can run, as little
// as possible, and says on stderr exactly what it changed and why. Everything not listed is
// passed through as rendered.
// usage: node kube-play-adapt.mjs IN.yaml OUT.yaml SECRETS_ROOT
//   1. A native sidecar (an initContainer with restartPolicy: Always, Kubernetes >= 1.29) becomes
//      the first regular container: podman 4.3 runs every init container to completion before
//      the pod's containers, so the sidecar would block the pod forever.
//   2. Secret and projected-Secret volumes become hostPath volumes of a directory under
//      SECRETS_ROOT holding the Secrets' items (files 0644, as the kubelet writes them): podman 4.3
//      mounts only hostPath, configMap, emptyDir and persistentVolumeClaim volumes.
//   3. The Secret objects are dropped (their data is in those directories).
//   4. containerPort entries are dropped: podman 4.3 publishes every containerPort on the host
//      (Kubernetes does not) and refuses published ports in a pod without a network. Probes that
//      name the port stay as rendered (podman turns them into healthchecks, which need systemd;
//      without it podman logs so and runs the pod).
import { mkdirSync, readFileSync, writeFileSync, chmodSync } from "node:fs";
import { join, dirname } from "node:path";
import { createRequire } from "node:module";

const require = createRequire(new URL("../helm/", import.meta.url));
const yaml = require("js-yaml");

const [input, output, root] = process.argv.slice(2);
const docs = yaml.loadAll(readFileSync(input, "utf8")).filter((d) => d);
const secrets = new Map(docs.filter((d) => d.kind === "Secret").map((d) => [d.metadata.name, d]));
const said = (what) => process.stderr.write(`adapted: ${what}\n`);

function secretItems(name, items) {
  const s = secrets.get(name);
  if (!s) throw new Error(`Secret ${name} is mounted but not in ${input}`);
  const data = { ...Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64")])),
                 ...Object.fromEntries(Object.entries(s.stringData ?? {}).map(([k, v]) => [k, Buffer.from(v)])) };
  return (items ?? Object.keys(data).map((k) => ({ key: k, path: k }))).map((it) => {
    if (!(it.key in data)) throw new Error(`Secret ${name} has no key ${it.key}`);
    return { path: it.path, bytes: data[it.key] };
  });
}

const out = [];
for (const d of docs) {
  if (d.kind === "Secret") {
    said(`Secret ${d.metadata.name}: dropped, its items are written into hostPath directories`);
    continue;
  }
  const spec = d.spec?.template?.spec ?? (d.kind === "Pod" ? d.spec : null);
  if (spec) {
    const native = (spec.initContainers ?? []).filter((c) => c.restartPolicy === "Always");
    if (native.length) {
      spec.initContainers = spec.initContainers.filter((c) => c.restartPolicy !== "Always");
      if (!spec.initContainers.length) delete spec.initContainers;
      for (const c of native.reverse()) {
        delete c.restartPolicy;
        spec.containers.unshift(c);
        said(`${d.kind}/${d.metadata.name}: native sidecar ${c.name} moved from initContainers (restartPolicy: Always) to the first of containers`);
      }
    }
    for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
      if (!c.ports) continue;
      said(`${d.kind}/${d.metadata.name}: container ${c.name}: ports ${c.ports.map((p) => `${p.name ?? ""}:${p.containerPort}`).join(", ")} dropped (podman would publish them on the host)`);
      delete c.ports;
    }
    for (const v of spec.volumes ?? []) {
      const sources = v.projected?.sources ?? (v.secret ? [{ secret: { name: v.secret.secretName, items: v.secret.items } }] : null);
      if (!sources) continue;
      const dir = join(root, `${d.metadata.name}-${v.name}`);
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      chmodSync(dir, 0o755);
      const files = [];
      for (const src of sources) {
        if (!src.secret) throw new Error(`volume ${v.name}: only Secret sources are supported here`);
        for (const it of secretItems(src.secret.name, src.secret.items)) {
          mkdirSync(dirname(join(dir, it.path)), { recursive: true, mode: 0o755 });
          writeFileSync(join(dir, it.path), it.bytes, { mode: 0o644 });
          chmodSync(join(dir, it.path), 0o644);
          files.push(`${src.secret.name}/${it.path}`);
        }
      }
      for (const k of Object.keys(v)) if (k !== "name") delete v[k];
      v.hostPath = { path: dir, type: "Directory" };
      said(`${d.kind}/${d.metadata.name}: volume ${v.name} (${files.join(", ")}) is a hostPath directory holding those files`);
    }
  }
  out.push(d);
}
writeFileSync(output, out.map((d) => yaml.dump(d, { lineWidth: -1 })).join("---\n"));
