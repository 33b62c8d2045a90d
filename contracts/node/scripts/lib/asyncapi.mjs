/**
 * Parsing an AsyncAPI file with the official parser, shared by asyncapi-validate.mjs and
 * asyncapi-diff.mjs.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Parser, fromFile } from '@asyncapi/parser';

/** The generated document: contracts/asyncapi.yaml. */
export const DEFAULT_DOCUMENT = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'asyncapi.yaml',
);

// Spectral's numeric severities (@stoplight/types DiagnosticSeverity).
const SEVERITIES = ['error', 'warning', 'info', 'hint'];

export const severityName = (severity) => SEVERITIES[severity] ?? `severity-${severity}`;

/**
 * Parse (and validate, with the AsyncAPI ruleset) one file.
 * @returns {Promise<{document: object|undefined, diagnostics: object[]}>} `document` is undefined
 *   when the parser found errors; `diagnostics` holds every finding, errors to hints.
 */
export async function parseFile(file) {
  // A parser per file: it caches resolved documents, and a diff parses two versions of one path.
  const parser = new Parser();
  const { document, diagnostics } = await fromFile(parser, file).parse();
  return { document, diagnostics };
}

/** One diagnostic as a plain object: what the validate script prints and --json emits. */
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
  return `${d.file}:${d.line ?? '?'}: ${d.severity} ${d.code} ${d.path}: ${d.message}`;
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
