"""Template rendering in Jinja2's sandbox with StrictUndefined.

Templates cannot reach Python internals (the sandbox refuses ``__class__`` and friends) and
an undefined variable is an error that names the variable and what is available.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import StrictUndefined, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


class TemplateProblem(ValueError):
    """A template that cannot be compiled or rendered, with where and why."""

    def __init__(self, template_name: str, message: str, line: int | None = None):
        self.template_name = template_name
        self.line = line
        self.message = message
        where = f"{template_name} template" + (f", line {line}" if line else "")
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class CompiledTemplate:
    name: str
    source: str
    template: jinja2.Template
    variables: frozenset[str]


@functools.lru_cache(maxsize=256)
def compile_template(source: str, name: str = "user") -> CompiledTemplate:
    """Parse and compile once; raises TemplateProblem with the line of a syntax error."""
    try:
        ast = _ENV.parse(source)
        variables = frozenset(meta.find_undeclared_variables(ast))
        template = _ENV.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(name, exc.message or str(exc), exc.lineno) from None
    return CompiledTemplate(name, source, template, variables)


def template_variables(source: str, name: str = "user") -> frozenset[str]:
    """The variables a template reads (that it does not set itself)."""
    return compile_template(source, name).variables


def render(compiled: CompiledTemplate, context: dict[str, Any]) -> str:
    """Render with clear errors for undefined variables and sandbox refusals."""
    try:
        return compiled.template.render(context)
    except jinja2.UndefinedError as exc:
        available = ", ".join(sorted(k for k in context if not k.startswith("_"))) or "none"
        raise TemplateProblem(compiled.name, f"{exc.message}. Available variables: {available}", _line_of(exc)) from None
    except SecurityError as exc:
        raise TemplateProblem(compiled.name, f"refused by the sandbox: {exc}", _line_of(exc)) from None
    except jinja2.TemplateError as exc:
        raise TemplateProblem(compiled.name, str(exc), _line_of(exc)) from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise TemplateProblem(compiled.name, f"{type(exc).__name__}: {exc}", _line_of(exc)) from None


def render_string(source: str, context: dict[str, Any], name: str = "user") -> str:
    return render(compile_template(source, name), context)


def compile_expression(expr: str) -> Any:
    """A sandboxed boolean expression over a condition, e.g. ``label == "positive" and style == "rant"``."""
    try:
        return _ENV.compile_expression(expr, undefined_to_none=False)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem("exclusion rule", f"{exc.message} in {expr!r}") from None


def _line_of(exc: BaseException) -> int | None:
    # Jinja rewrites tracebacks so template frames carry the template line number.
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
