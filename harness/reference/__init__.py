"""The operations reference, generated from the code: ``harness reference generate|check``."""

from harness.reference.files import ENV_EXAMPLE, REFERENCE, generate, problems, rendered, stale

__all__ = ["ENV_EXAMPLE", "REFERENCE", "generate", "problems", "rendered", "stale"]
