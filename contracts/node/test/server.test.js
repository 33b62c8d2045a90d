'use strict';
/**
 * src/server.js end to end: the service as a child process on the local broker (queues of its
 * own, deleted afterwards), a fake Wasender on loopback, webhooks in, the request read off
 * ag_queue, a reply put on wb_queue, the send seen at the fake Wasender.
 *
 * Broker: AMQP_TEST_URL, else amqp://127.0.0.1:5672; skipped when none answers.
 */
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn } = require('node:child_process');
const amqp = require('amqplib');

const { config, topologyQueues } = require('../src/server');

const URL_ = process.env.AMQP_TEST_URL || 'amqp://127.0.0.1:5672';
const PREFIX = `nodesrv_${crypto.randomBytes(4).toString('hex')}_`;
const AGENT_QUEUE = `${PREFIX}ag_queue`;
const WEBHOOK_QUEUE = `${PREFIX}wb_queue`;
const SECRET = crypto.randomBytes(8).toString('hex');
const API_KEY = crypto.randomBytes(8).toString('hex');
const PHONE = '+256703722777';
// uuid5(0c9f6d3e-2b71-4d8a-9a55-7e3f1c2b8d40, "+256703722777/3EB0ABC") from Python's uuid module,
// the simulator's request_id_for.
const REQUEST_ID = '08fa61b4-d81b-53f5-9774-c66df09cccca';

/** Poll until `probe` gives a value (no fixed sleeps; bounded by the test's timeout). */
async function until(probe, what, limitMs = 15000) {
  const end = Date.now() + limitMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Records every POST; `answers[to]` (a list) scripts the status of that number's next sends. */
function fakeHttp(route, answer) {
  const posts = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
      const [status, reply] = req.method === 'POST' && req.url === route ? answer(req, body, posts) : [404, {}];
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(reply));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, posts, url: `http://127.0.0.1:${server.address().port}` })));
}

async function fakeWasender(answers = {}) {
  const fake = await fakeHttp('/api/send-message', (req, body, posts) => {
    if (req.headers.authorization !== `Bearer ${API_KEY}`) return [401, { success: false, message: 'Unauthenticated.' }];
    const status = (answers[body.to] || []).shift() || 200;
    fake.attempts.push({ ...body, status });
    if (status === 422) return [422, { success: false, message: 'Validation failed', errors: { to: ['The to field format is invalid.'] } }];
    if (status !== 200) return [status, { success: false, message: 'Server Error' }];
    posts.push(body);
    return [200, { success: true, data: { msgId: posts.length, status: 'in_progress' } }];
  });
  fake.attempts = [];
  fake.sends = fake.posts;
  return fake;
}

function replyTo(requestId, phone, text) {
  const body = {
    messageId: crypto.randomUUID(), originalMessageId: requestId, timestamp: Date.now(), status: 'success',
    contact: { remoteJid: `${phone.slice(1)}@s.whatsapp.net`, phoneNumber: phone },
    response: { text, type: 'text', attachments: [] },
  };
  const properties = { contentType: 'application/json', correlationId: requestId, messageId: body.messageId, persistent: true };
  return [Buffer.from(JSON.stringify(body)), properties];
}

async function cleanTopology(ch, prefix) {
  const topology = config({ AGENT_QUEUE: `${prefix}ag_queue`, WEBHOOK_QUEUE: `${prefix}wb_queue` }).topology;
  for (const [queue] of topologyQueues(topology)) await ch.deleteQueue(queue);
  await ch.deleteExchange(topology.dlxAgent);
  await ch.deleteExchange(topology.dlxWebhook);
}

function startService(env) {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'src', 'server.js')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const ready = new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const match = /listening on (http:\/\/\S+)\n/.exec(out);
      if (match) resolve(match[1]);
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${stderr}`)));
  });
  return { child, ready, stderr: () => stderr };
}

function upsert(event, id, text) {
  return {
    event,
    timestamp: 1764583200,
    data: {
      messages: {
        key: { id, fromMe: false, remoteJid: '256703722777@s.whatsapp.net', cleanedSenderPn: '256703722777' },
        pushName: 'Amina',
        messageTimestamp: 1764583200,
        message: { conversation: text },
      },
    },
  };
}

async function post(url, body, headers = { 'x-webhook-signature': SECRET }) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/** A connection to the test broker, or null after skipping the test when none answers. */
async function brokerOrSkip(t) {
  try {
    return await amqp.connect(URL_);
  } catch (e) {
    t.skip(`no broker at ${URL_}: ${e.message}`);
    return null;
  }
}

test('webhook -> ag_queue -> wb_queue -> Wasender, through the real server', async (t) => {
  const connection = await brokerOrSkip(t);
  if (!connection) return;
  const ch = await connection.createChannel();
  const wasender = await fakeWasender();
  const service = startService({
    RABBITMQ_URL: URL_, AGENT_QUEUE, WEBHOOK_QUEUE, PORT: '0', HOST: '127.0.0.1',
    WASENDER_API_URL: wasender.url, WASENDER_API_KEY: API_KEY, WEBHOOK_SECRET: SECRET,
  });
  t.after(async () => {
    if (service.child.exitCode === null) service.child.kill('SIGKILL');
    wasender.server.close();
    const topology = config({ AGENT_QUEUE, WEBHOOK_QUEUE }).topology;
    for (const [queue] of topologyQueues(topology)) await ch.deleteQueue(queue);
    await ch.deleteExchange(topology.dlxAgent);
    await ch.deleteExchange(topology.dlxWebhook);
    await connection.close();
  });
  const url = await service.ready;
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/webhook$/);

  const health = async () => {
    const response = await fetch(url.replace('/webhook', '/health'));
    assert.equal(response.status, 200);
    return response.json();
  };
  assert.equal((await health()).broker, 'up');

  // A wrong signature is refused; the pair upsert + received of one message makes one request.
  assert.equal((await post(url, upsert('messages.upsert', '3EB0ABC', 'hi'), { 'x-webhook-signature': 'nope' })).status, 401);
  const first = await post(url, upsert('messages.upsert', '3EB0ABC', 'Do you have rice in stock?'));
  assert.deepEqual(first, { status: 200, body: { status: 'received', processed: true } });
  const twin = await post(url, upsert('messages.received', '3EB0ABC', 'Do you have rice in stock?'));
  assert.deepEqual(twin, { status: 200, body: { status: 'received', processed: false } });

  const message = await until(() => ch.get(AGENT_QUEUE, { noAck: true }), 'the request on ag_queue');
  // Both webhooks were answered after their publish was confirmed: nothing more will come.
  assert.equal((await ch.checkQueue(AGENT_QUEUE)).messageCount, 0);
  const request = JSON.parse(message.content.toString());
  assert.equal(message.properties.messageId, REQUEST_ID);
  assert.equal(message.properties.deliveryMode, 2);
  assert.equal(message.properties.contentType, 'application/json');
  assert.equal(request.messageId, REQUEST_ID);
  assert.equal(request.taskType, 'search');
  assert.deepEqual(request.contact, {
    remoteJid: '256703722777@s.whatsapp.net', phoneNumber: PHONE, name: 'Amina', countryCode: '256',
  });
  assert.deepEqual(request.message, { text: 'Do you have rice in stock?', messageId: '3EB0ABC', timestamp: 1764583200 });
  assert.deepEqual(request.context.conversationHistory, []);

  const reply = {
    messageId: crypto.randomUUID(),
    originalMessageId: REQUEST_ID,
    timestamp: Date.now(),
    status: 'success',
    contact: { remoteJid: '256703722777@s.whatsapp.net', phoneNumber: PHONE },
    response: { text: 'Yes, rice is in stock.', type: 'text', attachments: [] },
  };
  ch.sendToQueue(WEBHOOK_QUEUE, Buffer.from(JSON.stringify(reply)), {
    contentType: 'application/json', correlationId: REQUEST_ID, messageId: reply.messageId, persistent: true,
  });
  await until(() => wasender.sends.length > 0, 'the send at the fake Wasender');
  assert.deepEqual(wasender.sends, [{ to: PHONE, text: 'Yes, rice is in stock.' }]);
  // The same reply again (the agent ran twice): one outcome per request, no second send.
  ch.sendToQueue(WEBHOOK_QUEUE, Buffer.from(JSON.stringify(reply)), {
    contentType: 'application/json', correlationId: REQUEST_ID, messageId: reply.messageId,
  });

  // The next message carries the conversation so far and names the request before it.
  await post(url, upsert('messages.upsert', '3EB0DEF', 'Thanks!'));
  const next = JSON.parse((await until(() => ch.get(AGENT_QUEUE, { noAck: true }), 'the second request')).content);
  assert.deepEqual(next.context.conversationHistory, [
    { role: 'user', content: 'Do you have rice in stock?' },
    { role: 'assistant', content: 'Yes, rice is in stock.' },
  ]);
  assert.equal(next.metadata.previousMessageId, REQUEST_ID);
  await until(async () => (await health()).duplicates.wb_queue === 1, 'the duplicate reply dropped');
  assert.equal(wasender.sends.length, 1);

  // A request that died unanswered (dlx_agent): the fallback text goes to its contact, once.
  const dead = { messageId: crypto.randomUUID(), contact: { remoteJid: '256703722777@s.whatsapp.net' } };
  ch.sendToQueue(`${PREFIX}dlx_agent`, Buffer.from(JSON.stringify(dead)), { messageId: dead.messageId });
  ch.sendToQueue(`${PREFIX}dlx_agent`, Buffer.from(JSON.stringify(dead)), { messageId: dead.messageId });
  await until(async () => (await health()).duplicates.dlx_agent === 1, 'the second dead letter dropped');
  assert.deepEqual(wasender.sends.slice(1), [
    { to: PHONE, text: "I'm having trouble processing your request. Please try again." },
  ]);

  // Logs never carry the whole number or the user's text.
  assert.doesNotMatch(service.stderr(), /256703722777|rice/);

  const exited = new Promise((resolve) => service.child.on('exit', (code) => resolve(code)));
  service.child.kill('SIGTERM');
  assert.equal(await exited, 0);
});

test('Wasender failures: a 503 is retried through wb_queue.retry.1, a 422 parks the reply with an alert', async (t) => {
  const connection = await brokerOrSkip(t);
  if (!connection) return;
  const ch = await connection.createChannel();
  const prefix = `nodesrv_${crypto.randomBytes(4).toString('hex')}_`;
  const flaky = '+256700000011';
  const invalid = '+256700000022';
  const wasender = await fakeWasender({ [flaky]: [503], [invalid]: [422] });
  const alerts = await fakeHttp('/alerts', (req, body, posts) => { posts.push(body); return [201, { status: 'recorded' }]; });
  const service = startService({
    RABBITMQ_URL: URL_, AGENT_QUEUE: `${prefix}ag_queue`, WEBHOOK_QUEUE: `${prefix}wb_queue`, PORT: '0',
    WASENDER_API_URL: wasender.url, WASENDER_API_KEY: API_KEY, ALERT_URL: `${alerts.url}/alerts`,
    RETRY_DELAYS_MS: '100,200,400',
  });
  t.after(async () => {
    if (service.child.exitCode === null) service.child.kill('SIGKILL');
    wasender.server.close();
    alerts.server.close();
    await cleanTopology(ch, prefix);
    await connection.close();
  });
  await service.ready;
  const flakyRequest = crypto.randomUUID();
  const invalidRequest = crypto.randomUUID();
  ch.sendToQueue(`${prefix}wb_queue`, ...replyTo(flakyRequest, flaky, 'after a retry'));
  ch.sendToQueue(`${prefix}wb_queue`, ...replyTo(invalidRequest, invalid, 'never sent'));

  await until(() => wasender.sends.length === 1, 'the retried send');
  assert.deepEqual(wasender.sends, [{ to: flaky, text: 'after a retry' }]);
  assert.deepEqual(wasender.attempts.filter((a) => a.to === flaky).map((a) => a.status), [503, 200]);

  const parked = await until(() => ch.get(`${prefix}wb_queue.parking`, { noAck: true }), 'the parked reply');
  assert.equal(parked.properties.correlationId, invalidRequest);
  assert.equal(parked.properties.headers['x-park-reason'], 'invalid_number');
  assert.equal(parked.properties.headers['x-park-kind'], 'reply');
  assert.equal(JSON.parse(parked.content).response.text, 'never sent');
  const [alert] = await until(() => (alerts.posts.length ? alerts.posts : null), 'the admin alert');
  assert.equal(alert.reason, 'invalid_number');
  assert.equal(alert.original_message_id, invalidRequest);
  assert.equal(alert.phone, '+2567******22');
  assert.equal(wasender.attempts.filter((a) => a.to === invalid).length, 1);
});

test('the broker gone: /health says down and a webhook is answered 503, so Wasender delivers it again', async (t) => {
  // The service reaches the broker through a TCP relay of the test's own; cutting the relay (and
  // closing its port) loses the connection and fails every reconnect, while the broker runs on.
  const net = require('node:net');
  const target = new URL(URL_);
  const sockets = new Set();
  const relay = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5672), target.hostname);
    for (const [a, b] of [[client, upstream], [upstream, client]]) {
      sockets.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => b.destroy());
      a.pipe(b);
    }
  });
  try {
    await new Promise((resolve, reject) => {
      const probe = net.connect(Number(target.port || 5672), target.hostname, () => { probe.end(); resolve(); });
      probe.on('error', reject);
    });
  } catch (e) {
    t.skip(`no broker at ${URL_}: ${e.message}`);
    return;
  }
  await new Promise((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const viaRelay = new URL(URL_);
  viaRelay.hostname = '127.0.0.1';
  viaRelay.port = String(relay.address().port);
  const prefix = `nodesrv_${crypto.randomBytes(4).toString('hex')}_`;
  const wasender = await fakeWasender();
  const service = startService({
    RABBITMQ_URL: viaRelay.href, AGENT_QUEUE: `${prefix}ag_queue`, WEBHOOK_QUEUE: `${prefix}wb_queue`,
    PORT: '0', WASENDER_API_URL: wasender.url, WASENDER_API_KEY: API_KEY, WEBHOOK_SECRET: SECRET,
  });
  t.after(async () => {
    if (service.child.exitCode === null) service.child.kill('SIGKILL');
    wasender.server.close();
    relay.close();
    for (const socket of sockets) socket.destroy();
    const connection = await amqp.connect(URL_);
    await cleanTopology(await connection.createChannel(), prefix);
    await connection.close();
  });
  const url = await service.ready;
  const health = () => fetch(url.replace('/webhook', '/health'));
  assert.equal((await health()).status, 200);
  relay.close();
  for (const socket of sockets) socket.destroy();
  await until(async () => (await health()).status === 503, '/health 503');
  const answer = await post(url, upsert('messages.upsert', '3EB0XYZ', 'Is anyone there?'));
  assert.equal(answer.status, 503);
  // An event that carries no message is still answered 200.
  assert.equal((await post(url, { event: 'session.status', data: {} })).status, 200);

  // The relay back on its port: the service reconnects (it retries every second), and
  // Wasender's redelivery of the refused webhook is queued now.
  await new Promise((resolve) => relay.listen(Number(viaRelay.port), '127.0.0.1', resolve));
  await until(async () => (await health()).status === 200, '/health 200 again');
  assert.equal((await post(url, upsert('messages.upsert', '3EB0XYZ', 'Is anyone there?'))).status, 200);
  const connection = await amqp.connect(URL_);
  t.after(() => connection.close());
  const ch = await connection.createChannel();
  const request = await until(() => ch.get(`${prefix}ag_queue`, { noAck: true }), 'the request after the reconnect');
  assert.equal(JSON.parse(request.content).message.messageId, '3EB0XYZ');
});
