'use strict';
/**
 * wb_queue consumer pact: what the Node service needs of the agent's replies.
 *
 * Each interaction's example is handed to the real `processWebhookMessage` (validation, then
 * sending), so the pact only holds replies Node accepts. The pact file goes to a temporary
 * folder and must equal the committed contracts/pacts/ file (PACT_UPDATE=1 replaces it). The
 * agent service (Python) verifies it: tests/contract/test_pact_wb_queue_provider.py.
 */
const assert = require('node:assert/strict');
const path = require('node:path');
const { after, describe, it } = require('node:test');
const { PactV4, MatchersV3 } = require('@pact-foundation/pact');

const { InvalidReplyError, processWebhookMessage } = require('../src/consumer');
const { AGENT_SERVICE, NODE_SERVICE, WB_QUEUE_PACT_NAME, freshDir, settle } = require('./support/pactFiles');

const { regex, integer, number, eachLike, string } = MatchersV3;

// Pact regexes must match the whole value: anchored.
const UUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
const PHONE = '^\\+[1-9][0-9]{6,14}$';
const JID = '^[0-9]+(-[0-9]+)?@(s\\.whatsapp\\.net|lid|g\\.us|c\\.us)$';
const NON_EMPTY = '^[\\s\\S]+$';
const ERROR_CODE = '^[A-Z][A-Z0-9_]*$';
const RESPONSE_TYPE = '^(text|image|document)$';

// Fixed examples, so the file changes only when the contract does.
const REQUEST_ID = '6f1c1c5e-8a4e-4c1e-9a51-3d2f0b7f9a10';
const REPLY_ID = 'cc0a9445-40a6-554c-968f-e5cd82fe1387'; // uuid5 of REQUEST_ID, as the agent derives it
const PHONE_NUMBER = '+256703722777';

function reply(status, response, agentMetadata, extra = {}) {
  return {
    messageId: regex(UUID, REPLY_ID),
    originalMessageId: regex(UUID, REQUEST_ID),
    timestamp: integer(1700000002500),
    status, // exact: Node branches on it
    contact: {
      remoteJid: regex(JID, '256703722777@s.whatsapp.net'),
      phoneNumber: regex(PHONE, PHONE_NUMBER),
    },
    response: { text: regex(NON_EMPTY, response), type: regex(RESPONSE_TYPE, 'text') },
    agentMetadata,
    ...extra,
  };
}

// What Node reads off the AMQP message: JSON, and the request it answers.
const METADATA = { contentType: 'application/json', correlationId: regex(UUID, REQUEST_ID) };

const INTERACTIONS = [
  {
    state: 'the agent answered using tools',
    description: 'a success reply',
    body: reply('success', 'We deliver Monday to Saturday, 8am to 6pm.', {
      toolsUsed: eachLike('search_catalogue', 1),
      processingTime: number(2.5),
      tokensUsed: integer(150),
    }),
  },
  {
    state: 'a tool failed but the agent still answered',
    description: 'a partial reply',
    body: reply('partial', 'I could not check stock, but we usually have rice.', {
      toolsUsed: eachLike('get_order_status', 1),
      processingTime: number(3.1),
      tokensUsed: integer(90),
    }),
  },
  {
    state: 'the model stayed unavailable after every retry',
    description: 'an error reply',
    body: reply(
      'error',
      "I'm having trouble processing your request. Please try again.",
      { processingTime: number(0.8), tokensUsed: integer(0) },
      {
        error: {
          code: regex(ERROR_CODE, 'MODEL_UNAVAILABLE'),
          message: string('model API answered 503 (gave up after 3 retries)'),
        },
      },
    ),
  },
];

/** A pact message as amqplib delivers it: the pact metadata keys are amqplib's property names. */
function asAmqp(message) {
  return {
    content: Buffer.from(JSON.stringify(message.contents.content)),
    properties: message.metadata,
    fields: { redelivered: false, routingKey: 'wb_queue' },
  };
}

function recordingSender() {
  const sent = [];
  return {
    sent,
    sendResponseToContact: async (contact, text) => {
      sent.push({ to: contact.phoneNumber, text });
      return { msgId: sent.length, status: 'in_progress' };
    },
    logger: { warn: () => {} },
  };
}

function expecting(pact, { state, description, body }, metadata = METADATA) {
  return pact
    .addAsynchronousInteraction()
    .given(state)
    .expectsToReceive(description, (builder) => builder.withJSONContent(body).withMetadata(metadata));
}

describe('wb_queue consumer (Node) pact with the agent service', () => {
  const dir = freshDir('wb-queue-pact-');
  const pact = new PactV4({ consumer: NODE_SERVICE, provider: AGENT_SERVICE, dir, logLevel: 'warn' });

  for (const interaction of INTERACTIONS) {
    it(`accepts ${interaction.description}`, async () => {
      const deps = recordingSender();
      await expecting(pact, interaction).executeTest(async (message) => {
        const result = await processWebhookMessage(asAmqp(message), deps);
        assert.equal(result.originalMessageId, REQUEST_ID);
      });
      assert.equal(deps.sent.length, 1);
      assert.equal(deps.sent[0].to, PHONE_NUMBER);
    });
  }

  after(() => {
    // Every interaction above wrote (merged) into the fresh folder; now it must equal the
    // committed file. A failing `after` hook fails the run.
    settle(path.join(dir, WB_QUEUE_PACT_NAME));
  });
});

describe('the consumer test really validates', () => {
  // A throwaway pact: these interactions are never written anywhere that matters.
  const pact = new PactV4({
    consumer: 'broken-node-consumer',
    provider: AGENT_SERVICE,
    dir: freshDir('broken-pact-'),
    logLevel: 'error',
  });
  const [success] = INTERACTIONS;

  it('rejects a reply without response.text', async () => {
    const body = { ...success.body, response: { type: 'text' } };
    const run = expecting(pact, { ...success, description: 'no text', body }).executeTest(
      async (message) => processWebhookMessage(asAmqp(message), recordingSender()),
    );
    await assert.rejects(run, (e) => e instanceof InvalidReplyError && /response\.text/.test(e.message));
  });

  it('rejects a reply with an unknown status', async () => {
    const body = { ...success.body, status: 'done' };
    const run = expecting(pact, { ...success, description: 'bad status', body }).executeTest(
      async (message) => processWebhookMessage(asAmqp(message), recordingSender()),
    );
    await assert.rejects(run, (e) => e instanceof InvalidReplyError && /status/.test(e.message));
  });

  it('rejects a reply whose correlation id is not the request id', async () => {
    const metadata = { ...METADATA, correlationId: REPLY_ID };
    const run = expecting(pact, { ...success, description: 'bad correlation' }, metadata).executeTest(
      async (message) => processWebhookMessage(asAmqp(message), recordingSender()),
    );
    await assert.rejects(run, /properties\.correlationId/);
  });
});
