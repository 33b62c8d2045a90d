'use strict';
/**
 * A publisher that breaks the agent service's pact must fail the provider verification, with
 * a report naming the field. Each broken variant (test/support/brokenPublishers.js) runs the
 * real provider test in a child process (BROKEN_PUBLISHER=<name>), so its failure report stays
 * out of this run's output; the children run in parallel.
 */
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const path = require('node:path');
const { describe, it } = require('node:test');

const PROVIDER_TEST = path.join(__dirname, 'ag_queue.provider.test.js');
const ANSI = /\x1b\[[0-9;]*m/g;

/** Run the provider test with a broken publisher: {code, output} (stdout and stderr). */
function runBroken(name) {
  // Without NODE_TEST_CONTEXT the child runs as a plain test file, not as a runner's subprocess.
  const { NODE_TEST_CONTEXT, ...env } = process.env;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [PROVIDER_TEST],
      { env: { ...env, BROKEN_PUBLISHER: name, PACT_DO_NOT_TRACK: 'true' }, timeout: 60_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? error.code : 0, output: `${stdout}\n${stderr}`.replace(ANSI, '') });
      },
    );
  });
}

const EXPECTED = {
  'task-type': "$.taskType -> Expected 'poetry' to match '^(conversation|appointment|order|search)$'",
  'timestamp-string': '(String) to be an integer',
  'no-text': 'missing the following keys: text',
  'content-type': "Expected message metadata 'contentType' to have value '\"application/json\"'",
};

describe('a broken publisher fails the ag_queue provider verification', () => {
  const runs = Object.fromEntries(Object.keys(EXPECTED).map((name) => [name, runBroken(name)]));

  for (const [name, expected] of Object.entries(EXPECTED)) {
    it(`BROKEN_PUBLISHER=${name}`, async () => {
      const { code, output } = await runs[name];
      assert.notEqual(code, 0, `the verification passed with a broken publisher:\n${output}`);
      assert.ok(output.includes(expected), `the report does not say ${expected}:\n${output}`);
    });
  }
  it('timestamp as a string names $.timestamp', async () => {
    const { output } = await runs['timestamp-string'];
    assert.match(output, /\$\.timestamp -> Expected '\d+' \(String\) to be an integer/);
  });
});
