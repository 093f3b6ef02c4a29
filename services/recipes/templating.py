"""Template rendering in Jinja2's sandbox with StrictUndefined, bounded in size and time.

Templates cannot reach Python internals (the sandbox refuses ``__class__`` and friends) and
an undefined variable is an error that names the variable and what is available.

Recipes are shared as YAML, so a template is input from others: besides escapes it could
exhaust memory (``{{ 'a' * 10**10 }}``) or time (nested loops). Every operator that multiplies
sizes, every call and filter, every string concatenation and every loop goes through checks:
no sequence or rendered prompt over ``MAX_RENDER_CHARS``, no integer argument over it, no
integer over ``MAX_INT_BITS`` bits, no render longer than ``RENDER_SECONDS``. The preview, the
plan and the runner all render through :func:`render`, so they share the guard.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import StrictUndefined, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import _PassArg
from jinja2.visitor import NodeTransformer

from services.core.errors import StudioError

MAX_TEMPLATE_CHARS = 100_000    # a template's own source
MAX_RENDER_CHARS = 200_000      # a rendered prompt, and any string or list made while rendering
MAX_INT_BITS = 100_000          # about 30,000 decimal digits
RENDER_SECONDS = 2.0            # one render of one template
_WIDE_FORMAT = re.compile(r"\d{7,}")  # a format width of a million or more, e.g. '%9999999s'


class RenderLimit(StudioError, SecurityError):
    """A template went past a size or time bound (a sandbox refusal, reported as such)."""

    title = "A template went past its size or time limit"


_budget = threading.local()


def _check_time() -> None:
    deadline = getattr(_budget, "deadline", None)
    if deadline is not None and time.perf_counter() > deadline:
        raise RenderLimit(f"rendering took longer than {RENDER_SECONDS:g} s (a loop too large?)")


def _sized(value: Any) -> Any:
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset) and len(value) > MAX_RENDER_CHARS:
        raise RenderLimit(f"a value of {len(value):,} characters or items is larger than the {MAX_RENDER_CHARS:,} allowed")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise RenderLimit(f"a number of {value.bit_length():,} bits is larger than the {MAX_INT_BITS:,} allowed")
    return value


def _check_args(args: Iterable[Any]) -> None:
    for a in args:
        if isinstance(a, int) and not isinstance(a, bool) and abs(a) > MAX_RENDER_CHARS:
            raise RenderLimit(f"the argument {a:,} is larger than the {MAX_RENDER_CHARS:,} allowed")


def _check_format(fmt: Any) -> None:
    if isinstance(fmt, str) and _WIDE_FORMAT.search(fmt):
        raise RenderLimit("a format width of a million or more characters is not allowed")


def _length(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus size and time checks on the operators that grow values and on every call."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _check_time()
        if operator == "*":
            n, times = (_length(left), right) if _length(left) is not None else (_length(right), left)
            if n is not None and isinstance(times, int) and n * times > MAX_RENDER_CHARS:
                raise RenderLimit(f"repeating {n:,} characters or items {times:,} times is more than the {MAX_RENDER_CHARS:,} allowed")
            if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise RenderLimit("a product that large is not allowed")
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right * left.bit_length() > MAX_INT_BITS:
                raise RenderLimit(f"{left} ** {right} is larger than allowed")
        elif operator == "+":
            a, b = _length(left), _length(right)
            if a is not None and b is not None and a + b > MAX_RENDER_CHARS:
                raise RenderLimit(f"joining {a + b:,} characters or items is more than the {MAX_RENDER_CHARS:,} allowed")
        elif operator == "%" and isinstance(left, str):
            _check_format(left)
            _check_args(right if isinstance(right, tuple) else (right,))
        return _sized(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - jinja's signature
        _check_time()
        _check_args((*args, *kwargs.values()))
        wrapped = getattr(__obj, "__wrapped__", None)  # the sandbox wraps str.format / format_map
        if getattr(wrapped, "__name__", "") in ("format", "format_map"):
            _check_format(getattr(wrapped, "__self__", None))
        return _sized(super().call(__context, __obj, *args, **kwargs))


def _guard_filter(f: Callable[..., Any], name: str) -> Callable[..., Any]:
    skip = 2 if _PassArg.from_obj(f) is not None else 1  # context/environment, then the value

    @functools.wraps(f)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check_time()
        _check_args((*args[skip:], *kwargs.values()))
        if name == "format":
            _check_format(args[skip - 1] if len(args) >= skip else None)
        return _sized(f(*args, **kwargs))

    return guarded


def _loop(items: Any) -> Iterable[Any]:
    # Every loop checks the clock when it starts and every 256 items: nested loops are where
    # time runs away. A short list needs no per-item check (its start was checked).
    _check_time()
    if isinstance(items, list | tuple | dict | str) and len(items) <= 256:
        return items
    return _ticking(items)


def _ticking(items: Iterable[Any]) -> Iterator[Any]:
    for i, item in enumerate(items):
        if not i & 255:
            _check_time()
        yield item


class _Instrument(NodeTransformer):
    """Wraps each loop's iterable and each ``~`` concatenation in a checking filter."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, "studio_loop", [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(node, "studio_sized", [], [], None, None, lineno=node.lineno)


_ENV = _BoundedSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
_ENV.filters = {name: _guard_filter(f, name) for name, f in _ENV.filters.items()}
_ENV.filters["studio_loop"] = _loop
_ENV.filters["studio_sized"] = _sized


class TemplateProblem(StudioError, ValueError):
    """A template that cannot be compiled or rendered, with where and why."""

    title = "A template cannot be rendered"

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
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateProblem(name, f"the template has {len(source):,} characters; at most {MAX_TEMPLATE_CHARS:,} are allowed")
    try:
        ast = _ENV.parse(source)
        variables = frozenset(meta.find_undeclared_variables(ast))
        template = _ENV.from_string(_Instrument().visit(ast))
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(name, exc.message or str(exc), exc.lineno) from None
    return CompiledTemplate(name, source, template, variables)


def template_variables(source: str, name: str = "user") -> frozenset[str]:
    """The variables a template reads (that it does not set itself)."""
    return compile_template(source, name).variables


def render(compiled: CompiledTemplate, context: dict[str, Any]) -> str:
    """Render with clear errors for undefined variables, sandbox refusals and size or time limits."""
    _budget.deadline = time.perf_counter() + RENDER_SECONDS
    try:
        tpl = compiled.template
        out: list[str] = []
        size = 0
        try:  # Template.render's own loop, streamed so that the output's size is checked as it grows
            for chunk in tpl.root_render_func(tpl.new_context(context)):
                size += len(chunk)
                if size > MAX_RENDER_CHARS:
                    raise RenderLimit(f"the rendered prompt is longer than the {MAX_RENDER_CHARS:,} characters allowed")
                out.append(chunk)
        except Exception:
            tpl.environment.handle_exception()  # re-raises with the template's own line numbers
        return "".join(out)
    except RenderLimit as exc:
        raise TemplateProblem(compiled.name, f"stopped: {exc}", _line_of(exc)) from None
    except jinja2.UndefinedError as exc:
        available = ", ".join(sorted(k for k in context if not k.startswith("_"))) or "none"
        raise TemplateProblem(compiled.name, f"{exc.message}. Available variables: {available}", _line_of(exc)) from None
    except SecurityError as exc:
        raise TemplateProblem(compiled.name, f"refused by the sandbox: {exc}", _line_of(exc)) from None
    except jinja2.TemplateError as exc:
        raise TemplateProblem(compiled.name, str(exc), _line_of(exc)) from None
    except RecursionError:
        raise TemplateProblem(compiled.name, "stopped: a macro calls itself without end") from None
    except (TypeError, ValueError, ArithmeticError, LookupError, MemoryError) as exc:
        raise TemplateProblem(compiled.name, f"{type(exc).__name__}: {exc}", _line_of(exc)) from None
    finally:
        _budget.deadline = None


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
