'use strict';
/** The consumer's send-failure protocol: retry copies, parking, and the ack after the confirm,
 * through startConsumer with a recording channel (amqplib's calls, no broker). */
const test = require('node:test');
const assert = require('node:assert/strict');

const { startConsumer } = require('../src/consumer');

const REQUEST_ID = '6f1c1c5e-8a4e-4c1e-9a51-3d2f0b7f9a10';
const REPLY = {
  messageId: 'cc0a9445-40a6-554c-968f-e5cd82fe1387',
  originalMessageId: REQUEST_ID,
  timestamp: 1764583202603,
  status: 'success',
  contact: { remoteJid: '256703722777@s.whatsapp.net', phoneNumber: '+256703722777' },
  response: { text: 'Yes, in stock.', type: 'text', attachments: [] },
};

function recordingChannel() {
  const log = [];
  let handler = null;
  return {
    log,
    prefetch: async () => {},
    consume: async (_queue, fn) => { handler = fn; },
    sendToQueue: (queue, content, properties) => log.push(['send', queue, properties]),
    waitForConfirms: async () => log.push(['confirmed']),
    ack: () => log.push(['ack']),
    nack: (_m, _all, requeue) => log.push(['nack', requeue]),
    deliver: (headers = {}) =>
      handler({
        content: Buffer.from(JSON.stringify(REPLY)),
        fields: { redelivered: false },
        properties: {
          contentType: 'application/json', correlationId: REQUEST_ID, messageId: REPLY.messageId,
          headers: { ...headers, 'x-death': [{ reason: 'expired' }] },
        },
      }),
  };
}

const failing = (error) => ({ sendResponseToContact: async () => { throw error; } });

test('a transient failure goes to wb_queue.retry.N with the count, confirmed before the ack', async () => {
  const channel = recordingChannel();
  await startConsumer(channel, failing(new Error('Wasender 503')));
  await channel.deliver({ 'x-retry-count': 1 });
  const [[, queue, properties], confirmed, ack] = channel.log;
  assert.equal(queue, 'wb_queue.retry.2');
  assert.equal(properties.headers['x-retry-count'], 2);
  assert.equal(properties.headers['x-death'], undefined);
  assert.equal(properties.correlationId, REQUEST_ID);
  assert.equal(properties.persistent, true);
  assert.deepEqual([confirmed, ack], [['confirmed'], ['ack']]);
});

test('past MAX_RETRIES the reply is parked (retries_exhausted)', async () => {
  const channel = recordingChannel();
  await startConsumer(channel, failing(new Error('Wasender 503')), { maxRetries: 3 });
  await channel.deliver({ 'x-retry-count': 3 });
  const [[, queue, properties]] = channel.log;
  assert.equal(queue, 'wb_queue.parking');
  assert.equal(properties.headers['x-park-reason'], 'retries_exhausted');
  assert.equal(properties.headers['x-park-kind'], 'reply');
  assert.equal(properties.headers['x-retry-count'], 4);
});

test('a permanent failure is parked at once with its reason', async () => {
  const channel = recordingChannel();
  const error = Object.assign(new Error('422'), { permanent: true, reason: 'invalid_number' });
  await startConsumer(channel, failing(error));
  await channel.deliver();
  const [[, queue, properties]] = channel.log;
  assert.equal(queue, 'wb_queue.parking');
  assert.equal(properties.headers['x-park-reason'], 'invalid_number');
});

test('when the copy cannot be published the delivery goes back to the queue', async () => {
  const channel = recordingChannel();
  channel.waitForConfirms = async () => { throw new Error('channel closed'); };
  await startConsumer(channel, failing(new Error('Wasender 503')));
  await channel.deliver();
  assert.deepEqual(channel.log.slice(1), [['nack', true]]);
});
