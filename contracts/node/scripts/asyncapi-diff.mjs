#!/usr/bin/env node
/**
 * The changes between AsyncAPI files, as @asyncapi/diff classifies them (breaking, non-breaking,
 * unclassified): each file is compared with the next one.
 *
 *   node scripts/asyncapi-diff.mjs [--json] file.yaml [newer.yaml ...]
 *
 * This only reports. Whether a change is allowed is decided by the version rules in
 * contracts/README.md, which `harness contracts check` applies to this script's --json output
 * (it also classifies the payload-schema changes that @asyncapi/diff leaves unclassified).
 * Every file is parsed and validated first, because @asyncapi/diff needs valid, dereferenced
 * documents; --json reports each file's diagnostics too, so one run both validates and compares
 * (the parser is the slow part). With one file there is nothing to compare: it only validates.
 * Exit status: 0 all valid, 1 a file has errors or warnings (with errors there is no comparison),
 * 2 other failures.
 */
import { diff } from '@asyncapi/diff';
import { authoredJson, examine, formatDiagnostic, run } from './lib/asyncapi.mjs';

function print({ documents, pairs }) {
  for (const { diagnostics } of documents) {
    for (const d of diagnostics) if (d.severity === 'error') console.error(formatDiagnostic(d));
  }
  if (pairs === null) console.error('not compared: the parser refused a document');
  for (const { from, to, changes } of pairs ?? []) {
    const count = (type) => changes.filter((c) => c.type === type).length;
    console.log(
      `${from} -> ${to}: ${count('breaking')} breaking, ${count('non-breaking')} non-breaking, ` +
        `${count('unclassified')} unclassified`,
    );
    for (const c of changes) console.log(`  ${c.type} ${c.action} ${c.path}`);
  }
}

run('asyncapi-diff', async (argv) => {
  const json = argv.includes('--json');
  const files = argv.filter((a) => a !== '--json');
  if (files.length === 0) {
    console.error('usage: asyncapi-diff.mjs [--json] file.yaml [newer.yaml ...]');
    return 2;
  }
  const examined = [];
  for (const file of files) examined.push(await examine(file));
  let pairs = null; // no comparison when a document did not parse
  if (examined.every((e) => e.document !== undefined)) {
    const authored = examined.map((e) => authoredJson(e.document));
    pairs = [];
    for (let i = 1; i < examined.length; i += 1) {
      const { changes } = diff(authored[i - 1], authored[i]).getOutput();
      pairs.push({ from: examined[i - 1].file, to: examined[i].file, changes });
    }
  }
  const documents = examined.map(({ document, ...rest }) => rest);
  if (json) process.stdout.write(JSON.stringify({ documents, pairs }, null, 2) + '\n');
  else print({ documents, pairs });
  return documents.every((d) => d.valid) ? 0 : 1;
});
