"""Fuzzing the scenario loader: whatever the input, it answers with a scenario or InputError."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from racesim.errors import InputError
from racesim.formats.scenario import Scenario, parse

NAMES = st.sampled_from(["user", "cron", "bg", "page", "ops", "x;DROP", "ユーザー", "", "a" * 50])
PROGRAMS = st.sampled_from(["cron", "refresh", "background", "poll", "locker", "nope", ""])
CALLS = st.sampled_from(
    [
        "mark",
        "clear",
        "collect",
        "get_freshness",
        "upsert_recommendations",
        "invoke",
        "receive",
        "try_task_lock",
        "begin",
        "lock_row",
        "commit",
        "crash",
        "markk",
        "",
    ]
)
LABELS = st.sampled_from(["", "T+0 ", "T+1 ", "T-3 ", "T+1.5 ", "T+x ", "T+9999999 ", "T+2 "])
CLOCKS = st.sampled_from(["+6m", "+4m59s", "-2m", "+0s", "+250ms", "+99999999d", "+1h"])
SCALARS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.floats(allow_nan=False),
    st.text(max_size=30),
)


@st.composite
def entries(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(CLOCKS)
    if kind == 1:
        return draw(LABELS) + draw(st.sampled_from(["terminate ", "restart "])) + draw(NAMES)
    if kind == 2:
        return draw(st.text(max_size=40))
    return f"{draw(LABELS)}{draw(NAMES)}: {draw(CALLS)}"


@st.composite
def actor_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"program": draw(PROGRAMS)}
    for key in draw(
        st.lists(
            st.sampled_from(
                ["mode", "polls", "invoked_by", "faults", "hold", "lock_timeout", "task", "bogus"]
            ),
            max_size=3,
        )
    ):
        spec[key] = draw(
            st.one_of(
                SCALARS,
                NAMES,
                st.sampled_from(["sync", "async", "row", "advisory+row"]),
                st.lists(
                    st.sampled_from(
                        ["invoke_fails", "persist_fails", "crash_before_clear", "nope"]
                    ),
                    max_size=2,
                ),
            )
        )
    return spec


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if draw(st.booleans()):
        doc["name"] = draw(st.one_of(st.text(max_size=20), SCALARS))
    if draw(st.booleans()):
        doc["stores"] = draw(
            st.lists(st.sampled_from(["legacy", "token", "model", "mysql"]), max_size=4)
        )
    if draw(st.integers(0, 9)) > 0:
        doc["schedule"] = draw(st.lists(entries(), max_size=12))
    if draw(st.booleans()):
        doc["seed"] = draw(SCALARS)
    if draw(st.integers(0, 9)) > 0:
        doc["actors"] = draw(st.dictionaries(NAMES, actor_specs(), max_size=4))
    if draw(st.integers(0, 9)) > 0:
        doc["expect"] = draw(
            st.dictionaries(
                st.sampled_from(["legacy", "token", "model", "mysql"]),
                st.one_of(
                    st.just("holds"),
                    st.fixed_dictionaries(
                        {
                            "breaks": st.sampled_from(
                                ["no-foreign-clear", "banner-stays-up", "nope"]
                            ),
                            "at": st.sampled_from(["T+0", "T+1", "T+3", "nowhere"]),
                        }
                    ),
                    SCALARS,
                ),
                max_size=4,
            )
        )
    return doc


def to_toml(doc: dict[str, Any]) -> str:
    """A small TOML writer: top-level scalars and arrays first, then tables."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v) if isinstance(v, float) else str(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return "{ " + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + " }"

    head = [f"{k} = {value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    tables = [
        f"[{k}]\n" + "\n".join(f"{json.dumps(n)} = {value(x)}" for n, x in v.items())
        for k, v in doc.items()
        if isinstance(v, dict)
    ]
    return "\n".join(head) + "\n\n" + "\n\n".join(tables) + "\n"


def loads_or_refuses(text: str) -> None:
    try:
        result = parse(text, "fuzz.toml")
    except InputError as exc:
        assert exc.problems and all(p.startswith("fuzz.toml:") for p in exc.problems), exc
        return
    assert isinstance(result, Scenario)


FUZZ = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@FUZZ
@given(documents())
def test_generated_toml(doc: dict[str, Any]) -> None:
    loads_or_refuses(to_toml(doc))


@FUZZ
@given(st.text(max_size=300))
def test_garbage_text(text: str) -> None:
    loads_or_refuses(text)


@FUZZ
@given(st.binary(max_size=300))
def test_garbage_bytes(data: bytes) -> None:
    loads_or_refuses(data.decode("utf-8", errors="surrogateescape"))


STRUCTURE = st.text(alphabet="[]{}=,.\"'#\n\\ a1T+:_-", max_size=400)


@FUZZ
@given(STRUCTURE)
def test_structural_garbage(text: str) -> None:
    """Brackets, quotes, dots and escapes in any order: the pre-scan and the TOML
    parser agree enough that nothing but a scenario or an input error comes out."""
    loads_or_refuses(text)


@FUZZ
@given(st.integers(1, 40), st.sampled_from(["[", "{a = ", "[{a = "]), st.booleans())
def test_nesting_is_refused_past_the_bound_and_accepted_within(
    depth: int, opener: str, quoted: bool
) -> None:
    closer = {"[": "]", "{a = ": "}", "[{a = ": "}]"}[opener]
    value = opener * depth + "1" + closer * depth
    text = f"x = {json.dumps(value) if quoted else value}\n"
    try:
        parse(text, "fuzz.toml")
    except InputError as exc:
        nested = "nested more than" in str(exc)
        deep = not quoted and depth * opener.count("[") + depth * opener.count("{") > 16
        assert nested == deep, exc
