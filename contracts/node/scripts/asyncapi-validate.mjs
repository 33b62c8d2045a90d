#!/usr/bin/env node
/**
 * Validate AsyncAPI files with the official parser (@asyncapi/parser, which applies the AsyncAPI
 * ruleset): print every diagnostic with its severity and path, exit 1 when any is an error or a
 * warning.
 *
 *   node scripts/asyncapi-validate.mjs [--json] [file ...]     (default: $ASYNCAPI_FILE or ../asyncapi.yaml)
 *
 * Warnings fail too: the document is generated, so a warning is fixed once in the generator,
 * and a document kept free of them shows a new one (after a change, or a parser upgrade) the
 * day it appears instead of letting it join a list everyone has learnt to ignore. Info and hint
 * diagnostics (such as "a newer AsyncAPI version exists") are printed and do not fail.
 * Exit status: 0 valid, 1 errors or warnings, 2 a file could not be read or parsed at all.
 */
import { DEFAULT_DOCUMENT, examine, formatDiagnostic, run } from './lib/asyncapi.mjs';

const SEVERITIES = ['error', 'warning', 'info', 'hint'];

function print({ file, valid, diagnostics }) {
  for (const d of diagnostics) console.log(formatDiagnostic(d));
  const counts = SEVERITIES.map(
    (s) => `${s}: ${diagnostics.filter((d) => d.severity === s).length}`,
  ).join(', ');
  console.log(`${file}: ${valid ? 'valid' : 'INVALID'} (${counts})`);
}

run('asyncapi-validate', async (argv) => {
  const json = argv.includes('--json');
  const files = argv.filter((a) => a !== '--json');
  if (files.length === 0) files.push(DEFAULT_DOCUMENT);
  const report = [];
  for (const file of files) {
    const { document, ...result } = await examine(file);
    report.push(result);
  }
  if (json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else report.forEach(print);
  return report.every((r) => r.valid) ? 0 : 1;
});
