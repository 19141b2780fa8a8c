// Renders the requests of tests/deploy/test_toolkit_crosscheck.py's inputs with the real
// tencent-component-toolkit (src/modules/scf/utils.ts formatInputs, triggers/*.ts formatInputs) and
// prints them as JSON, for comparison with packaging/scf_requests.py.
// Usage: node toolkit_crosscheck.js <node_modules dir> < inputs.json
const path = require('path');
const modules = process.argv[2];
const { formatInputs } = require(path.join(modules, 'tencent-component-toolkit/lib/modules/scf/utils'));
const triggers = require(path.join(modules, 'tencent-component-toolkit/lib/modules/triggers')).default;

const data = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = { functions: {}, triggers: [] };
for (const [key, inputs] of Object.entries(data.functions)) {
  out.functions[key] = JSON.parse(JSON.stringify(formatInputs(inputs)));
}
for (const inputs of data.triggers) {
  const Trigger = triggers[inputs.type];
  const { triggerInputs } = new Trigger({ credentials: {}, region: data.region }).formatInputs({
    region: data.region,
    inputs,
  });
  out.triggers.push(JSON.parse(JSON.stringify(triggerInputs)));
}
process.stdout.write(JSON.stringify(out));
