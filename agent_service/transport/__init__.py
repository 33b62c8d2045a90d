"""The AMQP side of the service: consuming ag_queue, settling each delivery, publishing."""
