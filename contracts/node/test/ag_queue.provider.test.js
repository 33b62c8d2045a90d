'use strict';
/**
 * ag_queue provider verification: the Node publisher's requests against the agent service's
 * consumer pact (contracts/pacts/whatsapp-agent-service-whatsapp-node-service.json, written by
 * the Python consumer test tests/contract/test_pact_ag_queue_consumer.py).
 *
 * Each message is what the real `publishToAgentQueue` hands to the channel: the JSON body and
 * the AMQP properties (sent as pact metadata with `providerWithMetadata`). BROKEN_PUBLISHER=<name>
 * swaps in a broken variant (test/support/brokenPublishers.js): the verification must then fail.
 */
const assert = require('node:assert/strict');
const { describe, it } = require('node:test');
const { MessageProviderPact, providerWithMetadata } = require('@pact-foundation/pact');

const publisher = require('../src/publisher');
const { AG_QUEUE_PACT, NODE_SERVICE } = require('./support/pactFiles');
const { alteration } = require('./support/brokenPublishers');

const alter = alteration(process.env.BROKEN_PUBLISHER);

const JOHN = {
  remoteJid: '256703722777@s.whatsapp.net',
  phoneNumber: '+256703722777',
  name: 'John Doe',
  countryCode: '256',
};
const UNNAMED = { remoteJid: '256772000111@s.whatsapp.net', phoneNumber: '+256772000111' };
// WhatsApp's own message id and time (seconds), as the webhook delivered them.
const whatsapp = (text) => ({
  text,
  messageId: '3EB0C431C26A1916E2F7',
  timestamp: Math.floor(Date.now() / 1000),
});

/** A channel that records what would be sent to the broker. */
function recordingChannel() {
  const sent = [];
  return {
    sent,
    sendToQueue: (queue, content, options) => {
      sent.push({ queue, content, options });
      return true;
    },
  };
}

/** What the real publisher sends for these arguments, as {body, properties}. */
async function published(contact, message, context, options) {
  const channel = recordingChannel();
  await publisher.initializePublisher({ channel });
  await publisher.publishToAgentQueue(contact, message, context, options);
  await publisher.closePublisher();
  assert.equal(channel.sent.length, 1);
  const [{ queue, content, options: properties }] = channel.sent;
  assert.equal(queue, publisher.AGENT_QUEUE);
  return alter({ body: JSON.parse(content.toString('utf8')), properties });
}

/** amqplib's publish options as pact metadata (amqplib's property names; persistent = mode 2). */
function metadataOf({ persistent, ...properties }) {
  return { ...properties, deliveryMode: persistent ? 2 : 1 };
}

/** A pact message provider that returns what the publisher sent, metadata included. */
function sending(args) {
  return async (descriptor) => {
    const { body, properties } = await published(...args());
    return providerWithMetadata(() => body, metadataOf(properties))(descriptor);
  };
}

// What the Node service knows when it publishes; provider states set it up.
let context = {};
let retryCount = 0;

const stateHandlers = {
  'a VIP customer with two earlier turns': async () => {
    context = {
      conversationHistory: [
        { role: 'user', content: 'Do you sell rice?' },
        { role: 'assistant', content: 'Yes, 25 kg bags.' },
      ],
      userNotes: 'VIP customer - priority support',
      sessionData: { lastOrder: 1042 },
    };
  },
  'the first two attempts failed': async (_state, params) => {
    retryCount = Number(params.retryCount);
  },
};

// Each description of the agent service's pact, and how the Node service comes to send it.
const messageProviders = {
  'a conversation request with history and notes': sending(() => [
    JOHN, whatsapp('Do you deliver on Sundays?'), context, { taskType: 'conversation' },
  ]),
  'an appointment request': sending(() => [
    JOHN, whatsapp('Book me for Friday 10am'), {}, { taskType: 'appointment', priority: 'high' },
  ]),
  'an order request': sending(() => [
    JOHN, whatsapp('Where is order 1042?'), {}, { taskType: 'order', priority: 'urgent' },
  ]),
  'a search request from a contact without a name': sending(() => [
    UNNAMED, whatsapp('Find a pharmacy near Kampala Road'), {}, { taskType: 'search' },
  ]),
  'a retried conversation request': sending(() => [
    JOHN, whatsapp('Are you open today?'), {}, { taskType: 'conversation', priority: 'high', retryCount },
  ]),
};

/**
 * The committed pact file; or, in CI with PACT_VERIFY_FROM_BROKER=true and a broker, the pacts
 * the broker selects, with the result published (can-i-deploy needs it). A broken publisher
 * never publishes.
 */
function pactSource() {
  const fromBroker = process.env.PACT_VERIFY_FROM_BROKER === 'true' && !process.env.BROKEN_PUBLISHER;
  if (!fromBroker || !process.env.PACT_BROKER_BASE_URL) return { pactUrls: [AG_QUEUE_PACT] };
  const source = {
    pactBrokerUrl: process.env.PACT_BROKER_BASE_URL,
    pactBrokerToken: process.env.PACT_BROKER_TOKEN,
    consumerVersionSelectors: [{ mainBranch: true }, { matchingBranch: true }, { deployedOrReleased: true }],
    enablePending: true,
    publishVerificationResult: true,
    providerVersion: process.env.GIT_COMMIT,
    providerVersionBranch: process.env.GIT_BRANCH,
  };
  // pact-core rejects options given as undefined (e.g. no token on an open broker).
  return Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined));
}

describe('ag_queue provider (Node publisher) against the agent service pact', () => {
  it('sends every request the agent service expects', async () => {
    const verifier = new MessageProviderPact({
      provider: NODE_SERVICE,
      ...pactSource(),
      messageProviders,
      stateHandlers,
      logLevel: 'warn',
    });
    // Rejects (and prints each mismatch with its field path) when a message breaks the pact.
    await verifier.verify();
  });
});
