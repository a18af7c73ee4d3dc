"""Mail templates: each kind of message is a folder of three Jinja2 templates.

`templates/<name>/subject.txt`, `body.txt` (the text part) and `body.html` (the HTML part, its
values escaped), which may extend `layout.txt` and `layout.html`. Every template is compiled when
MailTemplates is made, at start-up, so rendering reads no file; a value a template names and the
caller did not give is an error, not an empty string.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES_DIR = Path(__file__).parent / "templates"
SUBJECT, TEXT_BODY, HTML_BODY = "subject.txt", "body.txt", "body.html"


class UnknownMailTemplate(LookupError):
    """No folder of that name under the templates directory."""


@dataclass(frozen=True, slots=True)
class RenderedMail:
    subject: str
    text_body: str
    html_body: str


class MailTemplates:
    """Shared by every app of a process through `repository_templates()`: compiling them costs
    30 ms, which each app of a test run would pay again."""

    def __init__(self, directory: Path = TEMPLATES_DIR) -> None:
        self._environment = Environment(
            loader=FileSystemLoader(directory),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            # Templates change with a deploy, never while a process runs: no stat per render.
            auto_reload=False,
            keep_trailing_newline=True,
        )
        self.names = frozenset(
            folder.name for folder in directory.iterdir() if (folder / SUBJECT).is_file()
        )
        for name in self.names:
            missing = [
                part for part in (TEXT_BODY, HTML_BODY) if not (directory / name / part).exists()
            ]
            if missing:
                raise ValueError(f"mail template {name!r} has no {' and no '.join(missing)}")
        # Layouts too: a template loads the one it extends when it renders.
        for template in self._environment.list_templates():
            self._environment.get_template(template)

    def render(self, name: str, context: Mapping[str, object]) -> RenderedMail:
        if name not in self.names:
            raise UnknownMailTemplate(f"no mail template {name!r}; known: {sorted(self.names)}")
        subject = self._environment.get_template(f"{name}/{SUBJECT}").render(context)
        return RenderedMail(
            # One line, whatever the template or its values hold: a header cannot be split.
            subject=" ".join(subject.split()),
            text_body=self._environment.get_template(f"{name}/{TEXT_BODY}").render(context),
            html_body=self._environment.get_template(f"{name}/{HTML_BODY}").render(context),
        )


@cache
def repository_templates() -> MailTemplates:
    """The templates in the repository, compiled once per process: they change with a deploy."""
    return MailTemplates()
