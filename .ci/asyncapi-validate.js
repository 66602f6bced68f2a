// Validates an AsyncAPI document with the official parser (@asyncapi/parser,
// the one behind `asyncapi validate`), every diagnostic of severity error
// or warning a failure. Usage: node .ci/asyncapi-validate.js FILE, with the
// parser installed where require finds it (NODE_PATH). .ci/run does that.
'use strict';

const fs = require('fs');
const { Parser, DiagnosticSeverity } = require('@asyncapi/parser');

async function main() {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node asyncapi-validate.js FILE');
    process.exit(2);
  }
  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(fs.readFileSync(file, 'utf8'), { source: file });
  let failed = !document;
  for (const d of diagnostics) {
    const where = d.path && d.path.length ? d.path.join('.') : '(root)';
    const level = d.severity === DiagnosticSeverity.Error ? 'error'
      : d.severity === DiagnosticSeverity.Warning ? 'warning' : 'info';
    console.log(`${file}: ${level}: ${d.code}: ${d.message} at ${where}`);
    if (d.severity === DiagnosticSeverity.Error || d.severity === DiagnosticSeverity.Warning) {
      failed = true;
    }
  }
  if (failed) {
    console.error(`${file}: not a valid AsyncAPI document`);
    process.exit(1);
  }
  console.log(`${file}: valid AsyncAPI ${document.version()}, ${document.allMessages().length} messages, ${document.allOperations().length} operations`);
}

main().catch((err) => {
  console.error(`asyncapi-validate: ${err.stack || err}`);
  process.exit(1);
});
