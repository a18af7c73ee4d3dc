"""structlog set up once: key-value lines in development, JSON lines in production."""

import logging
import os
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

from app.core.config import Settings


def add_process_id(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """The pid of the process that logs: with several workers, which one served a request."""
    event_dict["pid"] = os.getpid()
    return event_dict


def configure_logging(settings: Settings) -> None:
    level = logging.getLevelNamesMapping().get(settings.LOG_LEVEL.upper(), logging.INFO)
    renderer: structlog.typing.Processor
    if settings.log_json:
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            add_process_id,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    # RequestContextMiddleware logs every request once, with its request id; uvicorn's own
    # access line would be a second, poorer copy.
    logging.getLogger("uvicorn.access").disabled = True


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    # The stderr of the moment of writing, not of configuring: whoever replaced it since (a test
    # capturing output, a supervisor) gets the lines, and a closed stream is never written to.
    return structlog.PrintLogger(file=sys.stderr)
