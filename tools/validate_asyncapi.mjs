// Validate AsyncAPI documents with the official parser (@asyncapi/parser, pinned in package.json):
//
//     node tools/validate_asyncapi.mjs [docs/asyncapi.yaml ...]
//
// For each document: every diagnostic (severity, rule, path, message), then a line
// `asyncapi: <file>: <n> errors, <n> warnings, <n> infos, <n> hints`. Exits 1 when a document has an error or could
// not be parsed, 0 otherwise. References to other files (the payloads' ../schemas/*.json) are resolved from the
// document's own directory.
import path from "node:path";
import parserPackage from "@asyncapi/parser";

const { Parser, fromFile } = parserPackage;
const SEVERITIES = ["error", "warning", "info", "hint"]; // @stoplight/types DiagnosticSeverity 0..3

const parser = new Parser();
let failed = false;
for (const given of process.argv.length > 2 ? process.argv.slice(2) : ["docs/asyncapi.yaml"]) {
  const file = path.resolve(given);
  const { document, diagnostics } = await fromFile(parser, file).parse();
  const counts = { error: 0, warning: 0, info: 0, hint: 0 };
  for (const diagnostic of diagnostics) {
    const severity = SEVERITIES[diagnostic.severity] || "error";
    counts[severity] += 1;
    console.log(`${severity} ${diagnostic.code} ${(diagnostic.path || []).join(".")}: ${diagnostic.message}`);
  }
  if (!document && counts.error === 0) {
    counts.error += 1;
    console.log("error parse : the parser returned no document");
  }
  failed ||= counts.error > 0;
  console.log(`asyncapi: ${given}: ${counts.error} errors, ${counts.warning} warnings, ${counts.info} infos, `
    + `${counts.hint} hints`);
}
process.exit(failed ? 1 : 0);
