"""The Jinja2 environment of mljob/templates/ (the report and the operator console): every value escaped.

jinja2 is imported only when an environment is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2


def template_environment() -> jinja2.Environment:
    """A new environment over mljob/templates/: autoescape on for every template, undefined names an error;
    callers add the filters, tests and globals their page needs (and keep the environment)."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("mljob", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
