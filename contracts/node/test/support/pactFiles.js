'use strict';
/**
 * Where the tests read and write pact files, and the staleness check of the committed ones.
 *
 * Tests write into a fresh temporary folder and compare with the committed files in PACT_DIR
 * (default ../pacts, where they are in this repository; set it after copying this folder into
 * another repository); with PACT_UPDATE=1 they copy what they wrote into PACT_DIR instead. The
 * Python side (harness/pacts.py) does the same, with the same rule for what is compared.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const assert = require('node:assert/strict');

const PACTS_DIR = path.resolve(process.env.PACT_DIR || path.join(__dirname, '..', '..', '..', 'pacts'));
const AGENT_SERVICE = 'whatsapp-agent-service';
const NODE_SERVICE = 'whatsapp-node-service';
const AG_QUEUE_PACT = path.join(PACTS_DIR, `${AGENT_SERVICE}-${NODE_SERVICE}.json`);
const WB_QUEUE_PACT_NAME = `${NODE_SERVICE}-${AGENT_SERVICE}.json`;
const REGENERATE = `run \`PACT_UPDATE=1 npm test\` in contracts/node and commit ${PACTS_DIR}`;

// The versions of the tools that wrote a file record who wrote it, not the contract.
const WRITER_METADATA = ['pactRust', 'pact-js'];

const updating = () => !['', '0', 'false'].includes(process.env.PACT_UPDATE || '');

function freshDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

function normalised(pact) {
  const metadata = Object.fromEntries(
    Object.entries(pact.metadata || {}).filter(([k]) => !WRITER_METADATA.includes(k)),
  );
  return { ...pact, metadata };
}

/** Compare a freshly written pact with the committed one, or replace it under PACT_UPDATE=1. */
function settle(writtenPath) {
  const committed = path.join(PACTS_DIR, path.basename(writtenPath));
  if (updating()) {
    fs.mkdirSync(PACTS_DIR, { recursive: true });
    fs.copyFileSync(writtenPath, committed);
    return;
  }
  assert.ok(fs.existsSync(committed), `${committed} is missing: ${REGENERATE}`);
  const written = JSON.parse(fs.readFileSync(writtenPath, 'utf8'));
  const old = JSON.parse(fs.readFileSync(committed, 'utf8'));
  assert.deepStrictEqual(
    normalised(written),
    normalised(old),
    `${path.basename(committed)} is stale: ${REGENERATE}`,
  );
}

module.exports = {
  PACTS_DIR,
  AGENT_SERVICE,
  NODE_SERVICE,
  AG_QUEUE_PACT,
  WB_QUEUE_PACT_NAME,
  freshDir,
  settle,
};
