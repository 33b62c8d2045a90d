'use strict';
/**
 * The Node service's ag_queue publisher: builds AI processing requests the way the spec's
 * `libraries/queue/publisher.js` does, and sends them on an amqplib (confirm) channel.
 *
 * The channel is injected (`initializePublisher({ channel })`) so the contract tests can record
 * what would be sent without a broker; production passes `await connection.createConfirmChannel()`.
 */
const { randomUUID } = require('node:crypto');

const AGENT_QUEUE = process.env.AGENT_QUEUE || 'ag_queue';
const TASK_TYPES = ['conversation', 'appointment', 'order', 'search'];
const PRIORITIES = ['normal', 'high', 'urgent'];
const DEFAULT_MAX_RETRIES = 3;

let channel = null;

/** Keep only the keys whose value is defined: JSON has no `undefined`, and null is a value. */
function defined(object) {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined));
}

/**
 * The request envelope and its AMQP properties.
 *
 * @param {{remoteJid: string, phoneNumber: string, name?: string, countryCode?: string}} contact
 * @param {{text: string, messageId: string, timestamp: number}} message - the WhatsApp message
 *   (the spec passes only its text; the envelope needs WhatsApp's id and time as well)
 * @param {{conversationHistory?: Array<{role: string, content: string}>, userNotes?: string,
 *   sessionData?: object}} context
 * @param {{taskType?: string, priority?: string, retryCount?: number, maxRetries?: number,
 *   now?: () => number}} options
 * @returns {{body: object, properties: object}}
 */
function buildAgentRequest(contact, message, context = {}, options = {}) {
  const taskType = options.taskType || 'conversation';
  const priority = options.priority || 'normal';
  // Fail here, in the Node service, rather than let the agent dead-letter it later.
  if (!TASK_TYPES.includes(taskType)) throw new Error(`unknown taskType ${taskType}`);
  if (!PRIORITIES.includes(priority)) throw new Error(`unknown priority ${priority}`);
  const now = options.now || Date.now;
  const body = {
    messageId: randomUUID(), // uuid v4
    timestamp: now(), // epoch milliseconds
    taskType,
    contact: defined({
      remoteJid: contact.remoteJid,
      phoneNumber: contact.phoneNumber,
      name: contact.name,
      countryCode: contact.countryCode,
    }),
    message: { text: message.text, messageId: message.messageId, timestamp: message.timestamp },
    context: defined({
      conversationHistory: context.conversationHistory || [],
      userNotes: context.userNotes,
      sessionData: context.sessionData || {},
    }),
    metadata: {
      priority,
      retryCount: options.retryCount || 0,
      maxRetries: options.maxRetries ?? DEFAULT_MAX_RETRIES,
    },
  };
  // amqplib's names; `persistent: true` is delivery mode 2. The agent reads the JSON body and
  // logs by messageId (= the body's messageId).
  const properties = {
    contentType: 'application/json',
    persistent: true,
    messageId: body.messageId,
    timestamp: Math.floor(body.timestamp / 1000), // AMQP timestamps are seconds
    type: taskType,
  };
  return { body, properties };
}

/** Initialize the publisher with an amqplib channel (a ConfirmChannel in production). */
async function initializePublisher({ channel: ch }) {
  channel = ch;
}

async function closePublisher() {
  if (channel && typeof channel.close === 'function') await channel.close();
  channel = null;
}

/**
 * Publish an AI processing request to the agent queue.
 * @returns {Promise<string>} messageId
 */
async function publishToAgentQueue(contact, message, context, options = {}) {
  if (!channel) throw new Error('publisher not initialized: call initializePublisher first');
  const { body, properties } = buildAgentRequest(contact, message, context, options);
  channel.sendToQueue(AGENT_QUEUE, Buffer.from(JSON.stringify(body)), properties);
  // With a ConfirmChannel, wait for the broker to take responsibility for the message.
  if (typeof channel.waitForConfirms === 'function') await channel.waitForConfirms();
  return body.messageId;
}

module.exports = {
  AGENT_QUEUE,
  TASK_TYPES,
  PRIORITIES,
  buildAgentRequest,
  initializePublisher,
  publishToAgentQueue,
  closePublisher,
};
