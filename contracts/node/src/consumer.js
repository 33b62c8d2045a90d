'use strict';
/**
 * The Node service's wb_queue consumer: validates the agent's replies and sends the answer to
 * the WhatsApp contact, as the spec's `libraries/queue/consumer.js` does.
 *
 * Messages are amqplib's (`{content: Buffer, properties: {contentType, correlationId, ...}}`);
 * sending is injected (`deps.sendResponseToContact`) so the contract tests need no Wasender.
 */

const { settleSendFailure } = require('./sendFailures');

const WEBHOOK_QUEUE = process.env.WEBHOOK_QUEUE || 'wb_queue';
const STATUSES = ['success', 'error', 'partial'];
const RESPONSE_TYPES = ['text', 'image', 'document'];
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** A reply that breaks the contract: retrying cannot fix it, so it is dead-lettered. */
class InvalidReplyError extends Error {
  constructor(problems) {
    super(`invalid wb_queue reply: ${problems.join('; ')}`);
    this.name = 'InvalidReplyError';
    this.problems = problems;
  }
}

const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const isText = (v) => typeof v === 'string' && v.length > 0;

/** Every problem of a parsed reply and its AMQP properties, each naming the field. */
function replyProblems(reply, properties = {}) {
  if (!isObject(reply)) return ['(root): expected a JSON object'];
  const problems = [];
  const check = (ok, field, why) => ok || problems.push(`${field}: ${why}`);
  check(UUID.test(reply.messageId ?? ''), 'messageId', 'expected a uuid');
  check(UUID.test(reply.originalMessageId ?? ''), 'originalMessageId', 'expected a uuid');
  check(Number.isInteger(reply.timestamp), 'timestamp', 'expected an integer epoch');
  check(STATUSES.includes(reply.status), 'status', `expected one of ${STATUSES.join('|')}`);
  const contact = isObject(reply.contact) ? reply.contact : {};
  check(isText(contact.phoneNumber), 'contact.phoneNumber', 'expected a phone number');
  const response = isObject(reply.response) ? reply.response : {};
  check(isText(response.text), 'response.text', 'expected a non-empty string');
  check(
    response.type === undefined || RESPONSE_TYPES.includes(response.type),
    'response.type',
    `expected one of ${RESPONSE_TYPES.join('|')}`,
  );
  if (reply.status === 'error') {
    check(isObject(reply.error) && isText(reply.error.code), 'error.code', 'required on error');
  }
  if (reply.agentMetadata !== undefined) {
    const meta = isObject(reply.agentMetadata) ? reply.agentMetadata : {};
    const time = meta.processingTime;
    check(
      time === undefined || typeof time === 'number',
      'agentMetadata.processingTime',
      'expected a number',
    );
    const tokens = meta.tokensUsed;
    check(
      tokens === undefined || Number.isInteger(tokens),
      'agentMetadata.tokensUsed',
      'expected an integer',
    );
  }
  check(properties.contentType === 'application/json', 'properties.contentType', 'expected application/json');
  check(
    properties.correlationId === reply.originalMessageId,
    'properties.correlationId',
    'expected the originalMessageId',
  );
  return problems;
}

/**
 * Process one message from wb_queue: validate it, then send response.text to the contact
 * (on status error too: the agent puts its fallback text there).
 *
 * @param {{content: Buffer, properties: object}} message - an amqplib message
 * @param {{sendResponseToContact: (contact: object, text: string) => Promise<object>}} deps
 * @returns {Promise<{status: string, originalMessageId: string, sent: object}>}
 * @throws {InvalidReplyError} when the reply breaks the contract
 */
async function processWebhookMessage(message, deps) {
  let reply;
  try {
    reply = JSON.parse(message.content.toString('utf8'));
  } catch (e) {
    throw new InvalidReplyError([`(body): not JSON: ${e.message}`]);
  }
  const problems = replyProblems(reply, message.properties);
  if (problems.length > 0) throw new InvalidReplyError(problems);
  if (reply.status === 'error') {
    (deps.logger || console).warn(`agent error ${reply.error.code} for ${reply.originalMessageId}`);
  }
  const sent = await deps.sendResponseToContact(reply.contact, reply.response.text);
  return { status: reply.status, originalMessageId: reply.originalMessageId, sent };
}

/**
 * Start consuming wb_queue on an amqplib channel: ack when sent, dead-letter an invalid reply
 * (nack without requeue; the queue's DLX is dlx_webhook), and on a sending failure follow the
 * contract's retry and parking protocol (src/sendFailures.js) through `publishChannel`, a
 * ConfirmChannel. If even that publish fails, the delivery goes back to the queue.
 */
async function startConsumer(
  channel,
  deps,
  { prefetch = 10, publishChannel = channel, maxRetries = 3, retryLevels = 3 } = {},
) {
  await channel.prefetch(prefetch);
  return channel.consume(WEBHOOK_QUEUE, async (message) => {
    if (message === null) return; // the broker cancelled the consumer
    try {
      await processWebhookMessage(message, deps);
      channel.ack(message);
    } catch (e) {
      if (e instanceof InvalidReplyError) return channel.nack(message, false, false);
      try {
        await settleSendFailure(channel, publishChannel, message, e, { maxRetries, retryLevels });
      } catch {
        channel.nack(message, false, true);
      }
    }
  });
}

module.exports = {
  WEBHOOK_QUEUE,
  STATUSES,
  RESPONSE_TYPES,
  InvalidReplyError,
  replyProblems,
  processWebhookMessage,
  startConsumer,
};
