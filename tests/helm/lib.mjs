// Shared helpers of the tests/helm node tools.
import { readFileSync } from "node:fs";
import yaml from "js-yaml";

/** Every non-empty document of a multi-document YAML stream (a file path or "-" for stdin). */
export function loadObjects(path) {
  const text = readFileSync(path === "-" ? 0 : path, "utf8");
  return yaml.loadAll(text).filter((d) => d !== null && d !== undefined);
}

export function describe(obj) {
  return `${obj.kind ?? "?"}/${obj.metadata?.name ?? "?"}`;
}

/** The pod spec of a workload or Pod, or null. */
export function podSpec(obj) {
  if (obj.kind === "Pod") return obj.spec;
  if (obj.kind === "CronJob") return obj.spec?.jobTemplate?.spec?.template?.spec ?? null;
  return obj.spec?.template?.spec ?? null;
}

/** The sidecar container of a pod spec (by name), and whether it is an init container. */
export function findSidecar(spec, name = "redis-sidecar") {
  const init = (spec.initContainers ?? []).find((c) => c.name === name);
  if (init) return { container: init, init: true };
  const main = (spec.containers ?? []).find((c) => c.name === name);
  return main ? { container: main, init: false } : null;
}
