"""Fakes for the outside services: Wasender's send API and WhatsApp users behind its webhooks.

Both are real network peers on 127.0.0.1, so the code under test talks to them over HTTP exactly
as it talks to the real thing. The Gemini API's fake is imported from its own module,
`from fakes.gemini import FakeGemini`: it runs the agent's scripted policy, so importing it
loads ADK (about 3 s), which users of the other fakes should not pay for.
"""

from fakes.faults import FaultRule
from fakes.loopback_server import FakeServerError
from fakes.wasender import FakeWasender
from fakes.wasender_api import MessageKind
from fakes.wasender_faults import (
    DropConnection,
    Fault,
    InvalidNumber,
    RateLimited,
    ServerError,
    SlowResponse,
    SoftFailure,
    Timeout,
)
from fakes.wasender_records import Attempt, SentMessage
from fakes.webhooks import (
    InboundMessage,
    WebhookPayloadError,
    parse_webhook_event,
    verify_signature,
)
from fakes.whatsapp import FakeWhatsApp, PostResult

__all__ = [
    "Attempt",
    "DropConnection",
    "FakeServerError",
    "FakeWasender",
    "FakeWhatsApp",
    "Fault",
    "FaultRule",
    "InboundMessage",
    "InvalidNumber",
    "MessageKind",
    "PostResult",
    "RateLimited",
    "SentMessage",
    "ServerError",
    "SlowResponse",
    "SoftFailure",
    "Timeout",
    "WebhookPayloadError",
    "parse_webhook_event",
    "verify_signature",
]
