// Validates Kubernetes objects against the Kubernetes API's OpenAPI schemas (kubernetes-models)
// and the Prometheus Operator's and cert-manager's CRD schemas (their @kubernetes-models
// packages). Reads a JSON array of objects on standard input; prints one line per object
// ("ok KIND/NAME" or "invalid KIND/NAME: ...") and exits 1 if any is invalid or has no schema.
import { readFileSync } from "node:fs";

const crdPackages = {
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
  "cert-manager.io": "@kubernetes-models/cert-manager",
};

async function modelOf(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const base = crdPackages[group] ?? "kubernetes-models";
  const path = group ? `${base}/${group}/${version}/${kind}` : `${base}/${version}/${kind}`;
  return (await import(path))[kind];
}

const objects = JSON.parse(readFileSync(0, "utf8"));
let failed = false;
for (const object of objects) {
  const name = `${object.apiVersion} ${object.kind}/${object.metadata?.name}`;
  let Model;
  try {
    Model = await modelOf(object.apiVersion, object.kind);
  } catch {
    Model = undefined;
  }
  if (!Model) {
    console.log(`invalid ${name}: no schema for this apiVersion and kind`);
    failed = true;
    continue;
  }
  try {
    new Model(object).validate();
    console.log(`ok ${name}`);
  } catch (error) {
    console.log(`invalid ${name}: ${error.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
