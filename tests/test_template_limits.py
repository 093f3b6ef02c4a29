"""Templates are input from others (recipes travel as YAML): the sandbox bounds their size and time,
and every place that renders (preview, plan, runner steps) goes through the same guard."""

from __future__ import annotations

import resource
import time

import pytest

from services.generation.steps import StepRenderer
from services.recipes.plan import make_plan
from services.recipes.recipe import Recipe
from services.recipes.templating import MAX_RENDER_CHARS, MAX_TEMPLATE_CHARS, RENDER_SECONDS, TemplateProblem, render_string

HOSTILE = [
    "{{ 'a' * 10**10 }}",
    "{{ [1]*10**9 }}",
    "{{ 'ab' * 100000 * 100000 }}",
    "{{ 10 ** 100000000 }}",
    "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "{% set ns = namespace(n=2) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}{% endfor %}",
    "{{ 'a'|center(10**9) }}",
    "{{ [1]|batch(10**9, fill_with=0)|list }}",
    "{{ 'a'.ljust(10**9) }}",
    "{{ '%9999999999s' % 'a' }}",
    "{{ '{:>9999999999}'.format(1) }}",
    "{{ '%s'|format('a' * 150000) ~ ('b' * 150000) }}",
    "{{ lipsum(n=10**8) }}",
    "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
]

SLOW = [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% set r = range(100000)|list %}{% for a in r %}{% for b in r %}{% for c in r %}{% endfor %}{% endfor %}{% endfor %}",
    "{% set r = range(200)|list %}{% for a in r %}{% for b in r %}{% for c in r %}{% for d in r %}{% endfor %}{% endfor %}"
    "{% endfor %}{% endfor %}",
]


@pytest.mark.parametrize("src", HOSTILE)
def test_templates_that_would_exhaust_memory_are_stopped_at_once(src):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(TemplateProblem, match="stopped|larger|allowed") as info:
        render_string(src, {}, name="user")
    assert time.perf_counter() - t0 < RENDER_SECONDS + 1
    assert str(info.value).startswith("user template")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200, f"the process grew {grown_mb:.0f} MB"


@pytest.mark.parametrize("src", SLOW)
def test_templates_that_would_run_for_ever_stop_at_the_time_limit(src):
    t0 = time.perf_counter()
    with pytest.raises(TemplateProblem, match="longer than"):
        render_string(src, {})
    assert time.perf_counter() - t0 < RENDER_SECONDS * 3


def test_the_message_names_the_template_and_the_line():
    with pytest.raises(TemplateProblem) as info:
        render_string("Hello.\nNow:\n{{ 'a' * 10**10 }}", {}, name="user")
    assert info.value.template_name == "user" and info.value.line == 3
    assert "user template, line 3" in str(info.value) and "200,000" in str(info.value)


def test_a_huge_template_source_is_refused():
    with pytest.raises(TemplateProblem, match=f"at most {MAX_TEMPLATE_CHARS:,}"):
        render_string("x" * (MAX_TEMPLATE_CHARS + 1), {})


def test_ordinary_templates_render_as_before():
    out = render_string("{{ 3 * 'ab' }}|{{ 2 ** 10 }}|{{ 'ab' ~ 'cd' }}|{{ '%5.1f'|format(3.14159) }}|{{ '{:>4}'.format(7) }}|"
                        "{% for d in demos %}{{ d|upper }}{% endfor %}|{{ (range(300)|list)|length }}|{{ 'x' * MAX }}",
                        {"demos": ["a", "b"], "MAX": MAX_RENDER_CHARS - 100})
    head = "ababab|1024|abcd|  3.1|   7|AB|300|"
    assert out.startswith(head) and len(out) == len(head) + MAX_RENDER_CHARS - 100


def _recipe(**templates) -> Recipe:
    return Recipe.parse({"name": "hostile", "task": "t", "dimensions": [{"name": "label", "values": ["a", "b"]}], **templates})


def test_the_plan_and_so_the_builder_preview_go_through_the_guard():
    with pytest.raises(TemplateProblem, match="user template, line 2: stopped"):
        make_plan(_recipe(user_template="Write about {{ label }}.\n{{ label * 10**9 }}"), limit=2)


def test_runner_steps_go_through_the_guard():
    recipe = _recipe(steps=[{"name": "draft", "user_template": "{{ 'x' * 10**9 }}"}],
                     user_template="Improve: {{ steps.draft }}")
    plan = make_plan(recipe, limit=1)
    with pytest.raises(TemplateProblem, match="stopped"):
        StepRenderer(recipe).messages("draft", plan.items[0], {})
