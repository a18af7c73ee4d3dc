"""Mail that is never lost: messages are written to the outbox in the unit of work that promised
them (service.queue), and dispatchers send what was committed (dispatcher.py)."""
