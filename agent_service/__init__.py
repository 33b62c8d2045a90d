"""The production agent service: ag_queue in, Google ADK agent, wb_queue out."""
