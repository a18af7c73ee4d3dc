"""structlog set up once: key-value lines in development, JSON lines in production.

Libraries that log through the standard library (uvicorn, SQLAlchemy's DB_ECHO, the drivers)
are written the same way, through the same processors: in production every line is JSON, and a
line logged while a request is handled carries its request id, whoever logged it.
"""

import logging
import os
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from app.core.config import Settings


def add_process_id(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """The pid of the process that logs: with several workers, which one served a request."""
    event_dict["pid"] = os.getpid()
    return event_dict


def configure_logging(settings: Settings) -> None:
    level = logging.getLevelNamesMapping()[settings.LOG_LEVEL.upper()]
    renderer: Processor
    if settings.log_json:
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        add_process_id,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    _write_standard_logging_as_structlog(level, shared, renderer)
    # RequestContextMiddleware logs every request once, with its request id; uvicorn's own
    # access line would be a second, poorer copy.
    logging.getLogger("uvicorn.access").disabled = True


class _StderrHandler(logging.Handler):
    """Writes each record to the sys.stderr of the moment, as structlog's lines are: each line
    in one write, as structlog.WriteLogger writes them. The workers of a server share one
    stderr, and a line written in two parts (print() writes its newline apart, a system call of
    its own when PYTHONUNBUFFERED=1) can be cut in two by another worker's line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(f"{self.format(record)}\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def _write_standard_logging_as_structlog(
    level: int, shared: list[Processor], renderer: Processor
) -> None:
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = _StderrHandler(level)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    # Replace the handler of an earlier configuration (each app configures), and keep the
    # others (a test runner's).
    for earlier in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(earlier)
    root.addHandler(handler)
    # uvicorn gives its loggers their own handler and format; its lines go the way of every
    # library's instead.
    uvicorn = logging.getLogger("uvicorn")
    for own in list(uvicorn.handlers):
        uvicorn.removeHandler(own)
    uvicorn.propagate = True
    # DB_ECHO: SQLAlchemy gives its engine logger a plain stdout handler of its own unless it
    # has one; this one writes nothing, and the statements go the way of every library's lines.
    engine_logger = logging.getLogger("sqlalchemy.engine.Engine")
    if not engine_logger.handlers:
        engine_logger.addHandler(logging.NullHandler())


def _stderr_logger(*_args: Any) -> structlog.WriteLogger:
    # The stderr of the moment of writing, not of configuring: whoever replaced it since (a test
    # capturing output, a supervisor) gets the lines, and a closed stream is never written to.
    # A WriteLogger writes each line, its newline included, in one call (see _StderrHandler).
    return structlog.WriteLogger(file=sys.stderr)
