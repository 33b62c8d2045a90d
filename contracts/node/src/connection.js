'use strict';
/**
 * Connecting to RabbitMQ with amqplib, from configuration: the example of a connection (and a
 * TLS connection) that the publisher and consumer channels come from.
 *
 *   AMQP_URL       amqp://host:5672/vhost or amqps://... (user and password go in the URL, from your secret store) (default amqp://localhost)
 *   AMQP_CA_FILE   PEM file of the CA that signed the broker's certificate (amqps only)
 *   AMQP_CERT_FILE, AMQP_KEY_FILE   a client certificate, when the broker asks for one
 *
 * Example: AMQP_URL=amqps://rabbit.internal:5671/%2F AMQP_CA_FILE=/etc/ssl/rabbit-ca.pem
 * (the vhost `/` is written %2F). The broker's hostname is checked against its certificate.
 */
const fs = require('node:fs');

/** amqplib's connect arguments for an environment: [url, socketOptions]. */
function connectionSettings(env = process.env) {
  const url = env.AMQP_URL || 'amqp://localhost';
  const socketOptions = {};
  if (url.startsWith('amqps://')) {
    // amqplib hands these to tls.connect; without `ca` Node's own CA list is used.
    if (env.AMQP_CA_FILE) socketOptions.ca = [fs.readFileSync(env.AMQP_CA_FILE)];
    if (env.AMQP_CERT_FILE) socketOptions.cert = fs.readFileSync(env.AMQP_CERT_FILE);
    if (env.AMQP_KEY_FILE) socketOptions.key = fs.readFileSync(env.AMQP_KEY_FILE);
    socketOptions.servername = new URL(url).hostname;
  } else if (env.AMQP_CA_FILE || env.AMQP_CERT_FILE) {
    throw new Error('AMQP_CA_FILE / AMQP_CERT_FILE are set but AMQP_URL is not amqps://');
  }
  return [url, socketOptions];
}

/**
 * Connect, and open the two channels the contract needs: a confirm channel to publish
 * (ag_queue, and the Node side's retry and parking copies) and one to consume wb_queue.
 */
async function connect(env = process.env, amqp = require('amqplib')) {
  const [url, socketOptions] = connectionSettings(env);
  const connection = await amqp.connect(url, socketOptions);
  const publishChannel = await connection.createConfirmChannel();
  const consumeChannel = await connection.createChannel();
  return { connection, publishChannel, consumeChannel };
}

module.exports = { connectionSettings, connect };
