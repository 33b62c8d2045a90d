'use strict';
/**
 * What the Node side does when sending a wb_queue reply fails: the retry and parking protocol
 * of the contract (contracts/README.md, "The Node side's retry, parking and dead letters").
 *
 * A transient failure (Wasender 5xx, timeout, connection) publishes a copy of the reply to
 * `wb_queue.retry.N` with `x-retry-count` = failed attempts so far; the wait queue's TTL brings
 * it back to wb_queue. A permanent failure (the error has `permanent: true`, e.g. an invalid
 * number) or more than MAX_RETRIES failed attempts parks a copy in `wb_queue.parking` with
 * `x-park-reason` and `x-park-kind`. Either way the copy is confirmed before the original is
 * acked, so nothing is lost and nothing holds a consumer slot while it waits.
 */

const WEBHOOK_QUEUE = process.env.WEBHOOK_QUEUE || 'wb_queue';
const RETRY_HEADER = 'x-retry-count';
const PARK_REASON_HEADER = 'x-park-reason';
const PARK_KIND_HEADER = 'x-park-kind';
// Headers the broker writes when it dead-letters: a copy must not carry them over.
const BROKER_HEADERS = ['x-death', 'x-first-death-', 'x-last-death-'];

/** Failed send attempts of earlier deliveries (our own header; x-death is not reliable). */
function retryCount(message) {
  const value = Number.parseInt(String((message.properties.headers || {})[RETRY_HEADER] ?? 0), 10);
  return Number.isInteger(value) && value > 0 ? value : 0;
}

function copyProperties(message, headers) {
  const kept = Object.fromEntries(
    Object.entries(message.properties.headers || {}).filter(
      ([k]) => !BROKER_HEADERS.some((prefix) => k.startsWith(prefix)),
    ),
  );
  const { contentType, contentEncoding, correlationId, messageId, timestamp, type, appId } =
    message.properties;
  return {
    contentType, contentEncoding, correlationId, messageId, timestamp, type, appId,
    persistent: true,
    mandatory: true,
    headers: { ...kept, ...headers },
  };
}

/**
 * Settle a delivery whose send failed: publish the retry or parking copy on `publishChannel`
 * (a ConfirmChannel), then ack. Returns what it did: {action: 'retry'|'park', queue, attempts}.
 */
async function settleSendFailure(channel, publishChannel, message, error, options = {}) {
  const maxRetries = options.maxRetries ?? 3;
  const levels = options.retryLevels ?? 3;
  const queue = options.webhookQueue || WEBHOOK_QUEUE;
  const attempts = retryCount(message) + 1;
  let target;
  let headers;
  if (error.permanent || attempts > maxRetries || levels === 0) {
    target = { action: 'park', queue: `${queue}.parking`, attempts };
    const reason = error.permanent ? error.reason || 'client_error' : 'retries_exhausted';
    headers = { [PARK_REASON_HEADER]: reason, [PARK_KIND_HEADER]: 'reply', [RETRY_HEADER]: attempts };
  } else {
    // More attempts than wait queues: the last (longest) one serves the rest.
    target = { action: 'retry', queue: `${queue}.retry.${Math.min(attempts, levels)}`, attempts };
    headers = { [RETRY_HEADER]: attempts };
  }
  publishChannel.sendToQueue(target.queue, message.content, copyProperties(message, headers));
  if (typeof publishChannel.waitForConfirms === 'function') await publishChannel.waitForConfirms();
  channel.ack(message);
  return target;
}

module.exports = {
  RETRY_HEADER,
  PARK_REASON_HEADER,
  PARK_KIND_HEADER,
  retryCount,
  settleSendFailure,
};
