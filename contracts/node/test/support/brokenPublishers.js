'use strict';
/**
 * Deliberately broken variants of the publisher, for the tests that prove a contract break
 * fails the verification. Selected with BROKEN_PUBLISHER=<name>; each alters what the real
 * publisher sent, as a buggy publisher would have sent it.
 */
const BROKEN = {
  // An enum value the agent does not know.
  'task-type': ({ body, properties }) => ({ body: { ...body, taskType: 'poetry' }, properties }),
  // A number sent as a string (e.g. a timestamp formatted on the way).
  'timestamp-string': ({ body, properties }) => ({
    body: { ...body, timestamp: String(body.timestamp) },
    properties,
  }),
  // A required field dropped.
  'no-text': ({ body, properties }) => ({
    body: { ...body, message: { ...body.message, text: undefined } },
    properties,
  }),
  // The AMQP property the agent reads the body by.
  'content-type': ({ body, properties }) => ({
    body,
    properties: { ...properties, contentType: 'text/plain' },
  }),
};

/** The alteration named by `name`, or the identity when `name` is empty. */
function alteration(name) {
  if (!name) return (sent) => sent;
  const alter = BROKEN[name];
  if (!alter) throw new Error(`unknown BROKEN_PUBLISHER ${name}; known: ${Object.keys(BROKEN).join(', ')}`);
  return alter;
}

module.exports = { BROKEN, alteration };
