'use strict';
/** The connection example: settings from the environment, and a real connect when a broker is
 * given (AMQP_TEST_URL; the Python suite sets it to its broker). */
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { connectionSettings, connect } = require('../src/connection');

test('amqps URL with a CA file: the CA, the server name for the certificate check', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-ca-'));
  const ca = path.join(dir, 'ca.pem');
  fs.writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n...\n');
  const [url, options] = connectionSettings({
    AMQP_URL: 'amqps://rabbit.internal:5671/%2F',
    AMQP_CA_FILE: ca,
  });
  assert.equal(url, 'amqps://rabbit.internal:5671/%2F');
  assert.equal(options.servername, 'rabbit.internal');
  assert.equal(options.ca[0].toString(), '-----BEGIN CERTIFICATE-----\n...\n');
});

test('a CA file with a plain amqp URL is refused, not ignored', () => {
  assert.throws(
    () => connectionSettings({ AMQP_URL: 'amqp://localhost', AMQP_CA_FILE: '/x.pem' }),
    /not amqps/,
  );
});

test('connects and declares nothing', { skip: !process.env.AMQP_TEST_URL }, async () => {
  const { connection, publishChannel } = await connect({ AMQP_URL: process.env.AMQP_TEST_URL });
  try {
    // The agent service declares the topology; a passive check only reads it.
    await publishChannel.checkExchange('amq.direct');
  } finally {
    await connection.close();
  }
});
