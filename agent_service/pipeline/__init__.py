"""Deciding what becomes of each request: decode, deduplicate, run the agent, build the reply.

Nothing here touches the AMQP client; ``agent_service.transport`` carries the decisions out.
"""
