-- The request states the agent service's replicas share (DATABASE_URL): created at start, or
-- by `agent-service migrate`; every statement is idempotent. Rows are deleted DEDUP_TTL after
-- their last change; an in_flight row whose lease ran out belongs to a replica that died.

CREATE TABLE IF NOT EXISTS agent_request_state (
    message_id TEXT PRIMARY KEY, -- the request's messageId
    contact TEXT NOT NULL, -- a hash of the contact's phone number: whose turn order it joins
    previous_id TEXT, -- metadata.previousMessageId: the request it must be answered after
    sent_at BIGINT NOT NULL, -- the request's timestamp (ms): the order without previous_id
    arrival BIGSERIAL, -- the order it was first claimed in, for equal timestamps
    state TEXT NOT NULL CHECK (state IN ('in_flight', 'pending', 'released', 'retrying', 'done')),
    owner TEXT, -- the replica holding it (while in_flight)
    lease_until TIMESTAMPTZ, -- in_flight until then unless the owner renews it
    reply JSONB, -- the built reply until it is confirmed: a redelivery republishes it
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS agent_request_state_turns
    ON agent_request_state (contact, sent_at, arrival) WHERE state = 'in_flight';
CREATE INDEX IF NOT EXISTS agent_request_state_owner
    ON agent_request_state (owner) WHERE state = 'in_flight';
CREATE INDEX IF NOT EXISTS agent_request_state_age ON agent_request_state (updated_at);

-- Deliveries of a request that never settled (MAX_DELIVERIES): a row only for a request that
-- was redelivered or handed back, as in the embedded SQLite log.
CREATE TABLE IF NOT EXISTS agent_request_deliveries (
    message_id TEXT PRIMARY KEY,
    started INTEGER NOT NULL,
    settled INTEGER NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS agent_request_deliveries_age ON agent_request_deliveries (updated_at);
