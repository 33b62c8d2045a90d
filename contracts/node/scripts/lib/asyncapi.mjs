/**
 * Parsing an AsyncAPI file with the official parser, shared by asyncapi-validate.mjs and
 * asyncapi-diff.mjs.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Parser, fromFile } from '@asyncapi/parser';

/** The generated document: ASYNCAPI_FILE, else contracts/asyncapi.yaml of this repository. */
export const DEFAULT_DOCUMENT = path.resolve(
  process.env.ASYNCAPI_FILE ||
    path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'asyncapi.yaml'),
);

// Spectral's numeric severities (@stoplight/types DiagnosticSeverity).
const SEVERITIES = ['error', 'warning', 'info', 'hint'];
// Warnings fail as errors do: asyncapi-validate.mjs says why.
const FAILING = new Set(['error', 'warning']);

export const severityName = (severity) => SEVERITIES[severity] ?? `severity-${severity}`;

/** A file as the scripts name it: relative to where they run. */
export const shown = (file) => path.relative(process.cwd(), file) || file;

/** One diagnostic as a plain object: what the scripts print and --json emits. */
export function plainDiagnostic(file, diagnostic) {
  return {
    file,
    severity: severityName(diagnostic.severity),
    code: String(diagnostic.code),
    // A JSON pointer, the form @asyncapi/diff and the Python side use too.
    path: diagnostic.path.map((p) => '/' + String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join(''),
    // Spectral counts lines from 0; editors from 1.
    line: diagnostic.range ? diagnostic.range.start.line + 1 : null,
    message: diagnostic.message,
  };
}

export function formatDiagnostic(d) {
  return `${d.file}:${d.line ?? '?'}: ${d.severity} ${d.code} ${d.path || '(document)'}: ${d.message}`;
}

let parser;

/**
 * Parse and validate one file (the parser applies the AsyncAPI ruleset).
 * @returns {Promise<{file: string, valid: boolean, diagnostics: object[], document: object|undefined}>}
 *   `valid`: no error and no warning; `document` is undefined when the parser found errors;
 *   `diagnostics` holds every finding, errors to hints.
 */
export async function examine(file) {
  // One parser for every file: building one costs a third of a parse. Its resolver caches what
  // it read by URI, which is harmless here: the scripts read each file once.
  parser ??= new Parser();
  const { document, diagnostics } = await fromFile(parser, file).parse();
  const plain = diagnostics.map((d) => plainDiagnostic(shown(file), d));
  const valid = document !== undefined && !plain.some((d) => FAILING.has(d.severity));
  return { file: shown(file), valid, diagnostics: plain, document };
}

/**
 * The parsed document as JSON without the parser's own `x-parser-*` annotations: @asyncapi/diff
 * wants a dereferenced document, and the annotations (anonymous schema ids that renumber when a
 * schema is added) would show up as changes nobody made.
 */
export function authoredJson(document) {
  const seen = new WeakMap();
  const strip = (value) => {
    if (value === null || typeof value !== 'object') return value;
    // Dereferencing shares objects (and a recursive schema would loop): copy each one once.
    if (seen.has(value)) return seen.get(value);
    const copy = Array.isArray(value) ? [] : {};
    seen.set(value, copy);
    for (const [key, item] of Object.entries(value)) {
      if (!key.startsWith('x-parser-')) copy[key] = strip(item);
    }
    return copy;
  };
  return strip(document.json());
}

/** Run an async main(argv) → exit status; an exception is status 2. */
export function run(name, main) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error) => {
      console.error(`${name}: ${error.stack || error}`);
      process.exitCode = 2;
    },
  );
}
