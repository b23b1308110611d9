// Validates every object of rendered YAML streams against strict JSON schemas with ajv.
// usage: node validate.mjs SCHEMA_DIR[:SCHEMA_DIR…] FILE|- …
// Schema file names follow kubeconform's layout: <kind>-<group>-<version>.json, where <group> is
// the first label of the API group (networking.k8s.io -> networking); core group: <kind>-<version>.json.
// A kind without a schema is a failure, as is any violation. Exit 0 only if every object is valid.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv from "ajv";
import addFormats from "ajv-formats";
import { loadObjects, describe } from "./lib.mjs";

const [dirsArg, ...files] = process.argv.slice(2);
if (!dirsArg || files.length === 0) {
  console.error("usage: node validate.mjs SCHEMA_DIR[:SCHEMA_DIR…] FILE|- …");
  process.exit(2);
}
const dirs = dirsArg.split(":");
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
const compiled = new Map();

function schemaFile(obj) {
  if (typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") return null;
  const [groupOrVersion, version] = obj.apiVersion.split("/");
  const kind = obj.kind.toLowerCase();
  const base = version ? `${kind}-${groupOrVersion.split(".")[0]}-${version}` : `${kind}-${groupOrVersion}`;
  for (const dir of dirs) {
    const path = join(dir, `${base}.json`);
    if (existsSync(path)) return path;
  }
  return `(no ${base}.json in ${dirs.join(", ")})`;
}

let failures = 0;
let count = 0;
for (const file of files) {
  for (const obj of loadObjects(file)) {
    count++;
    const path = schemaFile(obj);
    if (path === null || !existsSync(path)) {
      console.error(`${file}: ${describe(obj)}: no schema for apiVersion ${obj.apiVersion} kind ${obj.kind} ${path ?? ""}`);
      failures++;
      continue;
    }
    if (!compiled.has(path)) compiled.set(path, ajv.compile(JSON.parse(readFileSync(path, "utf8"))));
    const validate = compiled.get(path);
    if (!validate(obj)) {
      failures++;
      for (const e of validate.errors) {
        const extra = e.params?.additionalProperty ? ` '${e.params.additionalProperty}'` : "";
        console.error(`${file}: ${describe(obj)}: ${e.instancePath || "/"} ${e.message}${extra}`);
      }
    }
  }
}
if (count === 0) {
  console.error("validate: no objects to validate");
  process.exit(1);
}
process.exit(failures === 0 ? 0 : 1);
