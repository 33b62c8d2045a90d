'use strict';
/**
 * The Node webhook service, small: Wasender's POST /webhook in, an AI request on ag_queue out;
 * replies from wb_queue out to the contact through Wasender; fallbacks for dead requests.
 * It behaves like the Python simulator (fakes/node_simulator) at the wire level.
 *
 *   RABBITMQ_URL=amqp://127.0.0.1:5672 WASENDER_API_URL=http://127.0.0.1:8080 \
 *   WASENDER_API_KEY=... WEBHOOK_SECRET=... PORT=3000 node src/server.js
 *
 * Environment (all optional): RABBITMQ_URL (else AMQP_URL), AGENT_QUEUE, WEBHOOK_QUEUE,
 * DLX_AGENT, DLX_WEBHOOK (default: the queue names' prefix + dlx_agent / dlx_webhook),
 * TOPOLOGY_PROFILE (classic|quorum), AGENT_TTL_MS, WEBHOOK_TTL_MS, RETRY_DELAYS_MS (both retry
 * ladders, comma-separated; or AGENT_RETRY_DELAYS_MS / WEBHOOK_RETRY_DELAYS_MS), MAX_RETRIES,
 * HISTORY_TURNS, HOST, PORT (0: any free port), WASENDER_API_URL, WASENDER_API_KEY,
 * WEBHOOK_SECRET, ALERT_URL, SEND_TIMEOUT_MS, FALLBACK_TEXT.
 * Prints `listening on http://HOST:PORT/webhook` on stdout when ready; logs go to stderr.
 */
const http = require('node:http');
const crypto = require('node:crypto');
const { AsyncLocalStorage } = require('node:async_hooks');

const { connect } = require('./connection');
const { buildAgentRequest } = require('./publisher');
const { replyProblems, startConsumer } = require('./consumer');
const { RETRY_HEADER, PARK_REASON_HEADER, PARK_KIND_HEADER, retryCount } = require('./sendFailures');

const FALLBACK_TEXT = "I'm having trouble processing your request. Please try again.";
const REQUEST_ID_NAMESPACE = '0c9f6d3e-2b71-4d8a-9a55-7e3f1c2b8d40';
const MESSAGE_EVENTS = ['messages.upsert', 'messages.received'];
const SIGNATURE_HEADER = 'x-webhook-signature';

// ---------------------------------------------------------------------------------------------
// configuration and topology

function delays(value, fallback) {
  if (!value) return fallback;
  return value.split(',').map((v) => Number.parseInt(v.trim(), 10));
}

function config(env = process.env) {
  const agentQueue = env.AGENT_QUEUE || 'ag_queue';
  const webhookQueue = env.WEBHOOK_QUEUE || 'wb_queue';
  // A renamed topology (harness/namespaces.py) prefixes every name: follow the queues' prefix.
  const prefix = agentQueue.endsWith('ag_queue') ? agentQueue.slice(0, -'ag_queue'.length) : '';
  const both = delays(env.RETRY_DELAYS_MS, [30000, 60000, 120000]);
  const port = env.PORT === undefined || env.PORT === '' ? 3000 : Number.parseInt(env.PORT, 10);
  const profile = env.TOPOLOGY_PROFILE || 'classic';
  if (!['classic', 'quorum'].includes(profile)) throw new Error(`unknown TOPOLOGY_PROFILE ${profile}`);
  const webhookRetryDelays = delays(env.WEBHOOK_RETRY_DELAYS_MS, both);
  return {
    amqpUrl: env.RABBITMQ_URL || env.AMQP_URL || 'amqp://127.0.0.1:5672',
    host: env.HOST || '127.0.0.1',
    port,
    wasenderUrl: (env.WASENDER_API_URL || 'http://127.0.0.1:8080').replace(/\/+$/, ''),
    wasenderKey: env.WASENDER_API_KEY || '',
    secret: env.WEBHOOK_SECRET || '',
    alertUrl: env.ALERT_URL || null,
    sendTimeoutMs: Number.parseInt(env.SEND_TIMEOUT_MS || '10000', 10),
    maxRetries: Number.parseInt(env.MAX_RETRIES || String(webhookRetryDelays.length), 10),
    historyTurns: Number.parseInt(env.HISTORY_TURNS || '10', 10),
    fallbackText: env.FALLBACK_TEXT || FALLBACK_TEXT,
    topology: {
      profile,
      agentQueue,
      webhookQueue,
      dlxAgent: env.DLX_AGENT || `${prefix}dlx_agent`,
      dlxWebhook: env.DLX_WEBHOOK || `${prefix}dlx_webhook`,
      agentTtlMs: Number.parseInt(env.AGENT_TTL_MS || '300000', 10),
      webhookTtlMs: Number.parseInt(env.WEBHOOK_TTL_MS || '60000', 10),
      agentRetryDelays: delays(env.AGENT_RETRY_DELAYS_MS, both),
      webhookRetryDelays,
      deliveryLimit: 10,
    },
  };
}

/** The queues and exchanges of agent_service/contract/topology.py, as amqplib arguments. */
function topologyQueues(t) {
  const quorum = t.profile === 'quorum';
  const typed = (args) => (quorum ? { 'x-queue-type': 'quorum', ...args } : args);
  const deadLettering = (args) =>
    typed(quorum ? { ...args, 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' } : args);
  const work = (ttl, dlx) =>
    deadLettering({
      'x-message-ttl': ttl,
      'x-dead-letter-exchange': dlx,
      ...(quorum ? { 'x-delivery-limit': t.deliveryLimit } : {}),
    });
  const wait = (target, list) =>
    list.map((delay, i) => [
      `${target}.retry.${i + 1}`,
      deadLettering({
        'x-message-ttl': delay,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': target,
      }),
    ]);
  return [
    [t.agentQueue, work(t.agentTtlMs, t.dlxAgent)],
    [t.webhookQueue, work(t.webhookTtlMs, t.dlxWebhook)],
    [t.dlxAgent, typed({})],
    [t.dlxWebhook, typed({})],
    [`${t.webhookQueue}.parking`, typed({})],
    ...wait(t.agentQueue, t.agentRetryDelays),
    ...wait(t.webhookQueue, t.webhookRetryDelays),
  ];
}

async function declareTopology(channel, t) {
  for (const exchange of [t.dlxAgent, t.dlxWebhook]) {
    await channel.assertExchange(exchange, 'fanout', { durable: true, autoDelete: false });
  }
  for (const [name, args] of topologyQueues(t)) {
    await channel.assertQueue(name, { durable: true, autoDelete: false, arguments: args });
  }
  await channel.bindQueue(t.dlxAgent, t.dlxAgent, '');
  await channel.bindQueue(t.dlxWebhook, t.dlxWebhook, '');
}

// ---------------------------------------------------------------------------------------------
// small helpers: ids, phones, routing, logs

/** RFC 4122 uuid5 (SHA-1), as Python's uuid.uuid5. */
function uuid5(name, namespace) {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const hash = crypto.createHash('sha1').update(ns).update(Buffer.from(name, 'utf8')).digest();
  const b = hash.subarray(0, 16);
  b[6] = (b[6] & 0x0f) | 0x50;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The request's messageId for one WhatsApp message of a contact (the simulator's request_id_for). */
const requestIdFor = (phone, whatsappId) => uuid5(`${phone}/${whatsappId}`, REQUEST_ID_NAMESPACE);

const E164 = /^\+[1-9]\d{6,14}$/;
const PN_JID = /^([1-9]\d{6,14})@s\.whatsapp\.net$/;
const DIGITS = /^[1-9]\d{6,14}$/;

function toE164(value) {
  const v = String(value).trim();
  if (E164.test(v)) return v;
  const jid = PN_JID.exec(v);
  if (jid) return `+${jid[1]}`;
  if (DIGITS.test(v)) return `+${v}`;
  return null;
}

/** `+256703722777` -> `+2567******77`, as fakes/phones.py masks. */
function mask(value) {
  if (!value) return '<none>';
  const digits = String(value).split('@', 1)[0].replace(/\D/g, '');
  if (digits.length < 7) return '***';
  return `+${digits.slice(0, 4)}${'*'.repeat(digits.length - 6)}${digits.slice(-2)}`;
}

const CALLING_CODES = new Set(
  ('1 7 20 27 30 31 33 34 39 44 49 52 55 61 81 86 91 211 233 234 243 250 251 252 253 254 255 ' +
    '256 257 260 263 971').split(' '),
);

function countryCode(digits) {
  for (const length of [3, 2, 1]) if (CALLING_CODES.has(digits.slice(0, length))) return digits.slice(0, length);
  return undefined;
}

const ROUTES = [
  ['appointment', /\b(?:appointments?|book(?:s|ed|ing)?|slots?)\b/i],
  ['order', /\b(?:orders?|ordered|deliver(?:y|ies|ed)?)\b|#\d+/i],
  ['search', /\b(?:search(?:es|ing)?|find|prices?|stock|in stock)\b|\bdo\s+you\s+have\b/i],
];
const routeTask = (text) => (ROUTES.find(([, re]) => re.test(text)) || ['conversation'])[0];

function log(level, msg, fields = {}) {
  process.stderr.write(`${JSON.stringify({ at: new Date().toISOString(), level, msg, ...fields })}\n`);
}

// ---------------------------------------------------------------------------------------------
// the webhook payload (fakes/webhooks.py)

class PayloadError extends Error {}

const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const MEDIA = ['imageMessage', 'videoMessage', 'documentMessage', 'audioMessage', 'stickerMessage'];

function parseWebhookEvent(event) {
  if (!isObject(event)) throw new PayloadError('event must be a JSON object');
  if (typeof event.event !== 'string') throw new PayloadError('event: expected the event name as a string');
  if (!MESSAGE_EVENTS.includes(event.event)) return [];
  const data = event.data;
  if (!isObject(data) || !('messages' in data)) throw new PayloadError(`${event.event}: data.messages is missing`);
  const raw = data.messages;
  const items = Array.isArray(raw) ? raw : [raw];
  return items
    .map((item, i) => parseMessage(item, Array.isArray(raw) ? `data.messages[${i}]` : 'data.messages', event))
    .filter((m) => m !== null);
}

function parseMessage(item, where, event) {
  if (!isObject(item)) throw new PayloadError(`${where}: expected an object`);
  const key = item.key;
  if (!isObject(key)) throw new PayloadError(`${where}.key: expected an object`);
  if (key.fromMe === true) return null;
  for (const field of ['id', 'remoteJid']) {
    if (typeof key[field] !== 'string' || !key[field]) {
      throw new PayloadError(`${where}.key.${field}: expected a non-empty string`);
    }
  }
  return {
    messageId: key.id,
    phone: senderPhone(key, `${where}.key`),
    name: typeof item.pushName === 'string' && item.pushName ? item.pushName : undefined,
    text: content(item, where),
    timestamp: timestamp(item.messageTimestamp, event.timestamp, where),
  };
}

function senderPhone(key, where) {
  for (const field of ['cleanedSenderPn', 'senderPn', 'remoteJid']) {
    const value = key[field];
    if (typeof value !== 'string' || !value || value.endsWith('@lid')) continue;
    if (field === 'remoteJid' && !value.endsWith('@s.whatsapp.net')) break;
    const phone = toE164(value);
    if (phone === null) throw new PayloadError(`${where}.${field}: not a phone number: ${mask(value)}`);
    return phone;
  }
  throw new PayloadError(`${where}: no phone number (remoteJid ${mask(key.remoteJid)} is not a phone JID)`);
}

/** The text or caption, else null (nothing for the agent to read). */
function content(item, where) {
  const message = item.message;
  const bodyText = typeof item.messageBody === 'string' && item.messageBody ? item.messageBody : null;
  if (message === undefined || message === null) return bodyText;
  if (!isObject(message)) throw new PayloadError(`${where}.message: expected an object`);
  if (typeof message.conversation === 'string') return message.conversation || bodyText;
  const ext = message.extendedTextMessage;
  if (isObject(ext) && typeof ext.text === 'string') return ext.text || bodyText;
  for (const field of MEDIA) {
    if (isObject(message[field])) {
      const caption = message[field].caption;
      return typeof caption === 'string' && caption ? caption : bodyText;
    }
  }
  return bodyText;
}

function timestamp(value, fallback, where) {
  for (const c of [value, fallback]) {
    if (Number.isInteger(c)) return c;
    if (typeof c === 'string' && /^\d+$/.test(c)) return Number.parseInt(c, 10);
  }
  throw new PayloadError(`${where}.messageTimestamp: expected Unix seconds`);
}

// ---------------------------------------------------------------------------------------------
// the service

class WebhookService {
  constructor(cfg) {
    this.cfg = cfg;
    this.t = cfg.topology;
    this.conn = null; // {connection, publishChannel, consumeChannel, deadChannel}
    this.stopping = false;
    this.history = new Map(); // phone -> [{role, content}]
    this.seen = new Map(); // phone/whatsappId -> Promise (being queued) | true (queued)
    this.lastRequest = new Map(); // phone -> messageId
    this.whatsappIds = new Map(); // request id -> WhatsApp id
    this.outcomes = new Map(); // request id -> reply | fallback | parked
    this.claims = new Map(); // request id -> active | waiting
    this.current = new AsyncLocalStorage(); // the delivery a send belongs to
    this.resumeAt = 0; // after a Wasender 429
    this.duplicates = { webhook: 0, wb_queue: 0, dlx_agent: 0, dlx_webhook: 0 }; // dropped, as node_duplicates
  }

  // -- broker ----------------------------------------------------------------------------------

  brokerUp() {
    return this.conn !== null;
  }

  async connectBroker() {
    const env = { ...process.env, AMQP_URL: this.cfg.amqpUrl };
    const conn = await connect(env);
    try {
      await declareTopology(conn.publishChannel, this.t);
      conn.deadChannel = await conn.connection.createChannel();
      const onClose = () => {
        if (this.conn !== conn) return;
        this.conn = null;
        log('warn', 'broker connection lost');
        if (!this.stopping) this.reconnect();
      };
      conn.connection.on('close', onClose);
      conn.connection.on('error', (e) => log('warn', 'broker connection error', { error: e.message }));
      for (const ch of [conn.publishChannel, conn.consumeChannel, conn.deadChannel]) {
        ch.on('error', (e) => log('warn', 'channel error', { error: e.message }));
        ch.on('close', () => {
          if (this.conn === conn && !this.stopping) conn.connection.close().catch(() => onClose());
        });
      }
      await startConsumer(this.tracking(conn.consumeChannel), this.senderDeps(), {
        prefetch: 10,
        publishChannel: this.parkingAlerts(conn.publishChannel),
        maxRetries: this.cfg.maxRetries,
        retryLevels: this.t.webhookRetryDelays.length,
      });
      await conn.deadChannel.prefetch(10);
      await conn.deadChannel.consume(this.t.dlxAgent, (m) => this.onDead(conn, m, 'fallback'));
      await conn.deadChannel.consume(this.t.dlxWebhook, (m) => this.onDead(conn, m, 'late_reply'));
      this.conn = conn;
    } catch (e) {
      await conn.connection.close().catch(() => {});
      throw e;
    }
  }

  async reconnect() {
    while (!this.stopping && this.conn === null) {
      try {
        await this.connectBroker();
        log('info', 'broker connection restored');
        return;
      } catch (e) {
        log('warn', 'reconnect failed', { error: e.message });
        await new Promise((r) => setTimeout(r, 1000).unref());
      }
    }
  }

  /** Publish on the confirm channel; resolves when the broker confirmed, rejects otherwise. */
  publish(queue, body, properties) {
    const conn = this.conn;
    if (conn === null) return Promise.reject(new Error('broker down'));
    return new Promise((resolve, reject) => {
      try {
        conn.publishChannel.sendToQueue(queue, body, properties, (err) => (err ? reject(new Error('nacked')) : resolve()));
      } catch (e) {
        reject(e);
      }
    });
  }

  // -- intake ----------------------------------------------------------------------------------

  async accept(inbound) {
    if (inbound.text === null) return 'skipped';
    const key = `${inbound.phone}/${inbound.messageId}`;
    for (;;) {
      const state = this.seen.get(key);
      if (state === undefined) break;
      if (state === true) {
        this.duplicates.webhook += 1;
        return 'duplicate';
      }
      await state.catch(() => {}); // its first delivery is being published and may yet fail
    }
    let done;
    this.seen.set(key, new Promise((resolve, reject) => { done = { resolve, reject }; }));
    this.seen.get(key).catch(() => {});
    try {
      await this.queue(inbound);
      this.seen.set(key, true);
      done.resolve();
      return 'queued';
    } catch (e) {
      this.seen.delete(key); // Wasender's redelivery of this webhook is new again
      done.reject(e);
      throw e;
    }
  }

  async queue(inbound) {
    const turns = this.history.get(inbound.phone) || [];
    const digits = inbound.phone.slice(1);
    const { body, properties } = buildAgentRequest(
      {
        remoteJid: `${digits}@s.whatsapp.net`,
        phoneNumber: inbound.phone,
        name: inbound.name ? inbound.name.slice(0, 256) : undefined,
        countryCode: countryCode(digits),
      },
      { text: inbound.text, messageId: inbound.messageId, timestamp: inbound.timestamp },
      { conversationHistory: turns.slice(-this.cfg.historyTurns) },
      { taskType: routeTask(inbound.text) },
    );
    body.messageId = properties.messageId = requestIdFor(inbound.phone, inbound.messageId);
    const previous = this.lastRequest.get(inbound.phone);
    if (previous) body.metadata.previousMessageId = previous;
    this.lastRequest.set(inbound.phone, body.messageId);
    const turn = { role: 'user', content: inbound.text };
    turns.push(turn);
    this.history.set(inbound.phone, turns);
    try {
      await this.publish(this.t.agentQueue, Buffer.from(JSON.stringify(body)), properties);
    } catch (e) {
      turns.splice(turns.indexOf(turn), 1);
      if (this.lastRequest.get(inbound.phone) === body.messageId) {
        if (previous) this.lastRequest.set(inbound.phone, previous);
        else this.lastRequest.delete(inbound.phone);
      }
      log('error', 'could not publish the request', { queue: this.t.agentQueue, contact: mask(inbound.phone), error: e.message });
      throw e;
    }
    this.whatsappIds.set(body.messageId, inbound.messageId);
    log('info', 'published to ag_queue', { messageId: body.messageId, contact: mask(inbound.phone), taskType: body.taskType });
  }

  // -- outcomes (one per request) ------------------------------------------------------------

  claim(requestId, continuation) {
    if (this.outcomes.has(requestId)) return false;
    const held = this.claims.get(requestId);
    if (held === 'active' || (held === 'waiting' && !continuation)) return false;
    this.claims.set(requestId, 'active');
    return true;
  }

  finish(requestId, outcome) {
    if (!this.outcomes.has(requestId)) this.outcomes.set(requestId, outcome);
    this.claims.delete(requestId);
  }

  delivered(requestId, phone, text, kind) {
    const turns = this.history.get(phone) || [];
    turns.push({ role: 'assistant', content: text });
    this.history.set(phone, turns);
    this.finish(requestId, kind === 'fallback' ? 'fallback' : 'reply');
    log('info', `sent ${kind}`, { requestId, contact: mask(phone) });
  }

  alert(reason, requestId, phone, detail = '') {
    const body = {
      reason,
      original_message_id: requestId || null,
      whatsapp_message_id: (requestId && this.whatsappIds.get(requestId)) || null,
      phone: mask(phone),
      at: Date.now() / 1000,
      detail,
    };
    log('error', 'admin alert', { reason, requestId });
    if (!this.cfg.alertUrl) return;
    fetch(this.cfg.alertUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    }).catch((e) => log('warn', 'could not post the alert', { reason, error: e.message }));
  }

  // -- Wasender ------------------------------------------------------------------------------

  /** One send: {status: sent|rate_limited|transient|permanent, reason, retryAfter}. */
  async sendOnce(to, text) {
    const wait = this.resumeAt - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    let response;
    let body = null;
    try {
      response = await fetch(`${this.cfg.wasenderUrl}/api/send-message`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.cfg.wasenderKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ to, text }),
        signal: AbortSignal.timeout(this.cfg.sendTimeoutMs),
      });
      body = await response.json().catch(() => null);
    } catch (e) {
      const reason = e.name === 'TimeoutError' ? 'timeout' : 'connection';
      return { status: 'transient', reason };
    }
    const s = response.status;
    const detail = isObject(body) ? String(body.message ?? '') : '';
    if (s >= 200 && s < 300) {
      return isObject(body) && body.success === true ? { status: 'sent' } : { status: 'transient', reason: 'soft_failure', detail };
    }
    if (s === 429) {
      let after = isObject(body) && typeof body.retry_after === 'number' ? body.retry_after : null;
      const reset = response.headers.get('x-ratelimit-reset');
      if (after === null && reset && /^\d+$/.test(reset)) after = Math.max(0, Number(reset) - Date.now() / 1000);
      const seconds = Math.min(60, after ?? 1);
      this.resumeAt = Math.max(this.resumeAt, Date.now() + seconds * 1000);
      return { status: 'rate_limited', reason: 'rate_limited' };
    }
    if (s === 408) return { status: 'transient', reason: 'timeout', detail };
    if (s >= 500) return { status: 'transient', reason: 'server_error', detail };
    const invalid = isObject(body) && isObject(body.errors) && 'to' in body.errors;
    return { status: 'permanent', reason: invalid ? 'invalid_number' : 'client_error', detail };
  }

  /** Send until sent, a transient failure, or a permanent one; 429s wait in place (each counts). */
  async sendUntilVerdict(to, text, attempts) {
    for (;;) {
      const result = await this.sendOnce(to, text);
      if (result.status === 'sent') return { action: 'sent', attempts };
      log('warn', 'Wasender send failed', { contact: mask(to), reason: result.reason });
      if (result.status === 'permanent') return { action: 'park', attempts, reason: result.reason, result };
      attempts += 1;
      if (attempts > this.cfg.maxRetries) return { action: 'park', attempts, reason: 'retries_exhausted', result };
      if (result.status === 'transient') return { action: 'retry', attempts, result };
    }
  }

  // -- wb_queue (consumer.js with sendFailures.js) ------------------------------------------

  /** consumer.js's deps: the delivery comes from `current` (set around each handler call). */
  senderDeps() {
    return {
      logger: { warn: (m) => log('warn', m) },
      sendResponseToContact: async (contact, text) => {
        const message = this.current.getStore();
        const requestId = message.properties.correlationId;
        const earlier = retryCount(message);
        if (!this.claim(requestId, earlier > 0)) {
          this.duplicates.wb_queue += 1;
          log('info', 'duplicate reply dropped', { requestId });
          return { skipped: true };
        }
        const phone = contact.phoneNumber;
        let verdict;
        try {
          verdict = await this.sendUntilVerdict(phone, text, earlier);
        } catch (e) {
          this.claims.delete(requestId);
          throw e;
        }
        if (verdict.action === 'sent') {
          this.delivered(requestId, phone, text, 'reply');
          return { sent: true };
        }
        // sendFailures.js counts this delivery as one more attempt: give it the count so far.
        message.properties.headers = { ...(message.properties.headers || {}), [RETRY_HEADER]: verdict.attempts - 1 };
        if (verdict.action === 'retry') this.claims.set(requestId, 'waiting');
        const error = new Error(`Wasender: ${verdict.result.reason}`);
        if (verdict.action === 'park' && verdict.reason !== 'retries_exhausted') {
          Object.assign(error, { permanent: true, reason: verdict.reason });
        }
        throw error;
      },
    };
  }

  /** The publish channel given to sendFailures.js: a parked copy, once confirmed, is alerted. */
  parkingAlerts(channel) {
    const parking = `${this.t.webhookQueue}.parking`;
    const pending = []; // parked copies published and not yet confirmed
    return {
      sendToQueue: (queue, content, properties) => {
        if (queue === parking) pending.push({ content, properties });
        return channel.sendToQueue(queue, content, properties);
      },
      waitForConfirms: async () => {
        const mine = pending.splice(0); // waitForConfirms covers everything published so far
        // Not confirmed: the delivery goes back to wb_queue and its next copy is alerted then.
        await channel.waitForConfirms();
        for (const { content, properties } of mine) {
          let phone = null;
          try { phone = JSON.parse(content.toString('utf8')).contact.phoneNumber; } catch { /* unreadable */ }
          this.finish(properties.correlationId, 'parked');
          this.alert(String(properties.headers[PARK_REASON_HEADER]), properties.correlationId, phone, 'reply');
        }
      },
    };
  }

  /** consumer.js's channel, each delivery's handler run inside `current`. */
  tracking(channel) {
    const current = this.current;
    return {
      prefetch: (n) => channel.prefetch(n),
      consume: (queue, handler, options) =>
        channel.consume(queue, (m) => current.run(m, () => handler(m)), options),
      ack: (m) => channel.ack(m),
      nack: (m, allUpTo, requeue) => channel.nack(m, allUpTo, requeue),
    };
  }

  // -- dead letters --------------------------------------------------------------------------

  async onDead(conn, message, kind) {
    if (message === null) return;
    const ch = conn.deadChannel;
    try {
      await this.handleDead(conn, message, kind);
      ch.ack(message);
    } catch (e) {
      log('warn', 'dead letter handling failed; it goes back to its queue', { error: e.message });
      setTimeout(() => { try { ch.nack(message, false, true); } catch { /* channel gone */ } }, 1000);
    }
  }

  async handleDead(conn, message, kind) {
    let data = null;
    try { data = JSON.parse(message.content.toString('utf8')); } catch { /* unreadable */ }
    let requestId;
    let phone;
    let text;
    if (kind === 'fallback') {
      const contact = isObject(data) && isObject(data.contact) ? data.contact : {};
      phone = [contact.phoneNumber, contact.remoteJid].map((v) => (typeof v === 'string' ? toE164(v) : null)).find(Boolean);
      requestId = isObject(data) && typeof data.messageId === 'string' && data.messageId
        ? data.messageId
        : `body-sha256:${crypto.createHash('sha256').update(message.content).digest('hex').slice(0, 32)}`;
      if (!phone) return this.alert('unreadable_dead_letter', message.properties.messageId, null, 'dlx_agent message without a readable contact');
      text = this.cfg.fallbackText;
      log('warn', 'dead agent request: sending the fallback', { requestId, contact: mask(phone) });
    } else {
      const problems = replyProblems(data, message.properties);
      if (problems.length > 0) return this.alert('invalid_reply', message.properties.correlationId, null, problems.join('; ').slice(0, 500));
      requestId = data.originalMessageId;
      phone = data.contact.phoneNumber;
      text = data.response.text;
    }
    let attempts = kind === 'fallback' ? 0 : retryCount(message);
    if (!this.claim(requestId, attempts > 0)) {
      this.duplicates[kind === 'fallback' ? 'dlx_agent' : 'dlx_webhook'] += 1;
      return;
    }
    try {
      for (;;) {
        const verdict = await this.sendUntilVerdict(phone, text, attempts);
        attempts = verdict.attempts;
        if (verdict.action === 'sent') return this.delivered(requestId, phone, text, kind);
        if (verdict.action === 'park') {
          const { headers, ...rest } = message.properties;
          const kept = Object.fromEntries(Object.entries(headers || {}).filter(([k]) => !k.startsWith('x-death') && !k.startsWith('x-first-death-') && !k.startsWith('x-last-death-')));
          await this.publish(`${this.t.webhookQueue}.parking`, message.content, {
            ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)),
            persistent: true,
            headers: { ...kept, [PARK_REASON_HEADER]: verdict.reason, [PARK_KIND_HEADER]: kind, [RETRY_HEADER]: attempts },
          });
          this.finish(requestId, 'parked');
          return this.alert(verdict.reason, requestId, phone, verdict.result.detail || kind);
        }
        const list = this.t.webhookRetryDelays.length ? this.t.webhookRetryDelays : [1000];
        await new Promise((r) => setTimeout(r, list[Math.min(attempts, list.length) - 1]));
      }
    } catch (e) {
      this.claims.delete(requestId);
      throw e;
    }
  }

  // -- HTTP ----------------------------------------------------------------------------------

  async handle(req, res) {
    const url = new URL(req.url, 'http://x');
    if (req.method === 'GET' && url.pathname === '/health') {
      const up = this.brokerUp();
      const body = { status: up ? 'ok' : 'degraded', broker: up ? 'up' : 'down', duplicates: this.duplicates };
      return reply(res, up ? 200 : 503, body);
    }
    if (url.pathname !== '/webhook') return reply(res, 404, { status: 'error', error: 'not found' });
    if (req.method !== 'POST') return reply(res, 405, { status: 'error', error: 'POST only' });
    if (this.cfg.secret && !signatureOk(req.headers[SIGNATURE_HEADER], this.cfg.secret)) {
      return reply(res, 401, { status: 'error', error: 'missing or wrong X-Webhook-Signature' });
    }
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    let inbound;
    try {
      inbound = parseWebhookEvent(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    } catch (e) {
      return reply(res, 400, { status: 'error', error: e instanceof PayloadError ? e.message : 'body is not JSON' });
    }
    const results = [];
    try {
      for (const message of inbound) results.push(await this.accept(message));
    } catch {
      return reply(res, 503, { status: 'error', error: 'could not queue the message for the agent; retry later' });
    }
    return reply(res, 200, { status: 'received', processed: results.includes('queued') });
  }

  async start() {
    await this.connectBroker();
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((e) => {
        log('error', 'request failed', { error: e.message });
        if (!res.headersSent) reply(res, 500, { status: 'error', error: 'internal error' });
      });
    });
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.cfg.port, this.cfg.host, resolve);
    });
    const { port } = this.server.address();
    this.url = `http://${this.cfg.host}:${port}/webhook`;
    process.stdout.write(`listening on ${this.url}\n`);
  }

  async stop() {
    this.stopping = true;
    if (this.server) {
      // In-flight webhooks get a moment to be answered; keep-alive sockets do not hold us up.
      const closed = new Promise((resolve) => this.server.close(resolve));
      this.server.closeIdleConnections();
      const force = setTimeout(() => this.server.closeAllConnections(), 2000);
      await closed;
      clearTimeout(force);
    }
    const conn = this.conn;
    this.conn = null;
    if (conn) await conn.connection.close().catch(() => {});
  }
}

function signatureOk(header, secret) {
  if (typeof header !== 'string' || !header) return false;
  const a = Buffer.from(header);
  const b = Buffer.from(secret);
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

function reply(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function main() {
  const service = new WebhookService(config());
  let stopping = false;
  const shutdown = async (signal) => {
    if (stopping) return;
    stopping = true;
    log('info', `${signal}: stopping`);
    await service.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  try {
    await service.start();
  } catch (e) {
    log('error', 'could not start', { error: e.message });
    process.exit(1);
  }
}

if (require.main === module) main();

module.exports = { config, topologyQueues, uuid5, requestIdFor, mask, parseWebhookEvent, WebhookService };
