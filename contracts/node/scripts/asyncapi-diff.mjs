#!/usr/bin/env node
/**
 * The changes between AsyncAPI files, as @asyncapi/diff classifies them (breaking, non-breaking,
 * unclassified): each file is compared with the next one.
 *
 *   node scripts/asyncapi-diff.mjs [--json] old.yaml new.yaml [newer.yaml ...]
 *
 * This only reports. Whether a change is allowed is decided by the version rules in
 * contracts/README.md, which `harness contracts check` applies to this script's --json output
 * (it also classifies the payload-schema changes that @asyncapi/diff leaves unclassified).
 * Every file is parsed and validated first, because @asyncapi/diff needs valid, dereferenced
 * documents. Exit status: 0 compared, 1 a file is not a valid AsyncAPI document, 2 other errors.
 */
import path from 'node:path';
import { diff } from '@asyncapi/diff';
import { authoredJson, formatDiagnostic, parseFile, plainDiagnostic } from './lib/asyncapi.mjs';

const shown = (file) => path.relative(process.cwd(), file) || file;

async function load(file) {
  const { document, diagnostics } = await parseFile(file);
  if (document === undefined) {
    for (const d of diagnostics) {
      if (d.severity === 0) console.error(formatDiagnostic(plainDiagnostic(shown(file), d)));
    }
    return undefined;
  }
  return authoredJson(document);
}

function printPair({ from, to, changes }) {
  const count = (type) => changes.filter((c) => c.type === type).length;
  console.log(
    `${from} -> ${to}: ${count('breaking')} breaking, ${count('non-breaking')} non-breaking, ` +
      `${count('unclassified')} unclassified`,
  );
  for (const c of changes) console.log(`  ${c.type} ${c.action} ${c.path}`);
}

async function main(argv) {
  const json = argv.includes('--json');
  const files = argv.filter((a) => a !== '--json');
  if (files.length < 2) {
    console.error('usage: asyncapi-diff.mjs [--json] old.yaml new.yaml [newer.yaml ...]');
    return 2;
  }
  const documents = [];
  for (const file of files) documents.push(await load(file));
  if (documents.includes(undefined)) return 1;
  const pairs = [];
  for (let i = 1; i < files.length; i += 1) {
    const { changes } = diff(documents[i - 1], documents[i]).getOutput();
    pairs.push({ from: shown(files[i - 1]), to: shown(files[i]), changes });
  }
  if (json) process.stdout.write(JSON.stringify(pairs, null, 2) + '\n');
  else pairs.forEach(printPair);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    console.error(`asyncapi-diff: ${error.stack || error}`);
    process.exitCode = 2;
  },
);
