"""Mail templates: a subject, a text part and an HTML part for each kind of message."""

import shutil
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from app.mail.rendering import TEMPLATES_DIR, MailTemplates, UnknownMailTemplate

LINK = "https://quill.example/verify-email?token=abc.DEF-123_x"
# What each template is rendered with, as its subject.txt says.
CONTEXTS: dict[str, dict[str, object]] = {
    "test": {"note": "a note"},
    "welcome": {"username": "ann", "verify_link": LINK, "verify_hours": 48},
    "verify_email": {"username": "ann", "verify_link": LINK, "verify_hours": 48},
    "reset_password": {"username": "ann", "reset_link": LINK, "reset_minutes": 60},
    "email_changed_notice": {
        "username": "ann",
        "new_email": "new@example.com",
        "reset_link": LINK,
        "reset_minutes": 60,
    },
}


@pytest.fixture(scope="module")
def templates() -> MailTemplates:
    return MailTemplates()


def test_every_template_folder_is_a_known_template(templates: MailTemplates) -> None:
    assert templates.names == set(CONTEXTS)


@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_each_template_renders_a_subject_and_both_parts_with_its_values(
    templates: MailTemplates, name: str
) -> None:
    rendered = templates.render(name, CONTEXTS[name])

    assert rendered.subject
    assert "\n" not in rendered.subject
    assert rendered.html_body.lstrip().startswith("<!doctype html>")
    for value in CONTEXTS[name].values():
        assert str(value) in rendered.text_body
        assert str(value) in rendered.html_body


def test_the_html_part_escapes_values_and_the_text_part_keeps_them(
    templates: MailTemplates,
) -> None:
    rendered = templates.render("test", {"note": '<a href="x">Tom & Jerry</a>'})

    assert '<a href="x">Tom & Jerry</a>' in rendered.text_body
    assert "&lt;a href=&#34;x&#34;&gt;Tom &amp; Jerry&lt;/a&gt;" in rendered.html_body
    assert '<a href="x">' not in rendered.html_body


def test_a_value_the_template_needs_and_was_not_given_is_an_error(
    templates: MailTemplates,
) -> None:
    with pytest.raises(UndefinedError, match="verify_link"):
        templates.render("welcome", {"username": "ann", "verify_hours": 48})


def test_the_subject_is_one_line_whatever_its_values_hold(templates: MailTemplates) -> None:
    context = {**CONTEXTS["welcome"], "username": "ann\r\nBcc: eve@example.com"}

    rendered = templates.render("welcome", context)

    assert rendered.subject == "Welcome to Quill, ann Bcc: eve@example.com"


def test_an_unknown_template_is_refused(templates: MailTemplates) -> None:
    with pytest.raises(UnknownMailTemplate, match="nonesuch"):
        templates.render("nonesuch", {})


def test_templates_are_compiled_at_start_up_so_rendering_reads_no_file(tmp_path: Path) -> None:
    directory = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, directory)
    templates = MailTemplates(directory)
    shutil.rmtree(directory)

    rendered = templates.render("test", {"note": "still here"})

    assert "still here" in rendered.text_body


def test_a_template_without_one_of_its_parts_stops_start_up(tmp_path: Path) -> None:
    directory = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, directory)
    (directory / "welcome" / "body.html").unlink()

    with pytest.raises(ValueError, match=r"'welcome' has no body\.html"):
        MailTemplates(directory)
