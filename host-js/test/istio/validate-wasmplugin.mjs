// Validates the Istio WasmPlugin resource read from standard input (JSON, as
// `taglock envoy wasmplugin` prints it) against the WasmPlugin CRD's schema,
// with @kubernetes-models/istio. Exit 0: valid; exit 1: every problem printed
// to stderr. Run by cli/tests/envoy_istio.rs:
//   node host-js/test/istio/validate-wasmplugin.mjs < wasmplugin.json
import { WasmPlugin } from "@kubernetes-models/istio/extensions.istio.io/v1alpha1/WasmPlugin";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
let resource;
try {
  resource = JSON.parse(Buffer.concat(chunks).toString("utf8"));
} catch (err) {
  console.error(`not JSON: ${err.message}`);
  process.exit(1);
}
// The model sets apiVersion and kind itself: check the printed ones first.
const problems = [];
if (resource.apiVersion !== WasmPlugin.apiVersion) {
  problems.push(`apiVersion is ${JSON.stringify(resource.apiVersion)}, not ${WasmPlugin.apiVersion}`);
}
if (resource.kind !== WasmPlugin.kind) {
  problems.push(`kind is ${JSON.stringify(resource.kind)}, not ${WasmPlugin.kind}`);
}
try {
  new WasmPlugin(resource).validate();
} catch (err) {
  problems.push(err.message);
}
if (problems.length > 0) {
  for (const problem of problems) console.error(problem);
  process.exit(1);
}
console.log("valid");
