"""The console's SVG charts: whatever the counts and labels, the output is well-formed XML, the
labels come back intact after escaping (characters XML cannot carry become U+FFFD), nothing is
drawn outside the view box, and nothing needs an inline style or script (the pages' CSP)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustanchor.web.svg_charts import (
    Bar,
    Series,
    fit,
    horizontal_bars,
    nice_scale,
    stacked_columns,
    xml_text,
)

NS = "{http://www.w3.org/2000/svg}"
# Any code point, lone surrogates and control characters included.
labels = st.text(st.characters(codec=None, categories=None), max_size=80)
counts = st.integers(min_value=0, max_value=10**12)
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def as_xml(text: str) -> str:
    return NOT_XML.sub("\ufffd", text)


def parsed(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 - our own output under test
    assert root.tag == f"{NS}svg"
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") is not None
    for element in root.iter():
        assert element.get("style") is None
        assert element.tag not in (f"{NS}script", f"{NS}style", f"{NS}foreignObject")
        assert not any(name.startswith("on") for name in element.attrib)
    return root


def view_box(root: ET.Element) -> tuple[float, float]:
    _, _, width, height = (float(v) for v in (root.get("viewBox") or "").split())
    return width, height


def assert_inside(root: ET.Element) -> None:
    width, height = view_box(root)
    for rect in root.iter(f"{NS}rect"):
        x, y = float(rect.get("x", "0")), float(rect.get("y", "0"))
        w, h = float(rect.get("width", "0")), float(rect.get("height", "0"))
        assert w >= 0 and h >= 0
        assert x >= -0.01 and x + w <= width + 0.01
        assert y >= -0.01 and y + h <= height + 0.01


def group_titles(root: ET.Element) -> list[str]:
    return [g.findtext(f"{NS}title") or "" for g in root.iter(f"{NS}g")]


@settings(max_examples=200, deadline=None)
@given(
    title=labels,
    description=labels,
    data=st.data(),
    categories=st.lists(labels, max_size=40),
)
def test_stacked_columns_are_well_formed_for_any_labels_and_counts(
    title: str, description: str, data: st.DataObject, categories: list[str]
) -> None:
    series = data.draw(
        st.lists(
            st.builds(
                Series,
                label=labels,
                values=st.lists(counts, min_size=len(categories), max_size=len(categories)),
                colour=st.sampled_from(["#0b5fff", "#c2410c", "#000000"]),
            ),
            min_size=1,
            max_size=3,
        )
    )
    root = parsed(
        stacked_columns(
            chart_id="decisions",
            title=title,
            description=description,
            categories=categories,
            series=series,
        )
    )
    assert root.findtext(f"{NS}title") == as_xml(title)
    assert root.findtext(f"{NS}desc") == as_xml(description)
    titles = group_titles(root)
    assert len(titles) == len(categories)
    for i, (category, text) in enumerate(zip(categories, titles, strict=True)):
        summary = ", ".join(f"{as_xml(one.label)} {one.values[i]}" for one in series)
        assert text == f"{as_xml(category)}: {summary}"
    assert_inside(root)


@settings(max_examples=200, deadline=None)
@given(title=labels, bars=st.lists(st.builds(Bar, label=labels, value=counts), max_size=20))
def test_horizontal_bars_are_well_formed_for_any_labels_and_counts(
    title: str, bars: list[Bar]
) -> None:
    root = parsed(
        horizontal_bars(
            chart_id="reasons",
            title=title,
            description="d",
            bars=bars,
            colour="#c2410c",
            empty_text="<none> & \x00",
        )
    )
    assert group_titles(root) == [f"{as_xml(bar.label)}: {bar.value}" for bar in bars]
    assert_inside(root)
    if not bars:
        assert "<none> & \ufffd" in "".join(root.itertext())


def test_labels_are_escaped_not_interpreted() -> None:
    svg = horizontal_bars(
        chart_id="reasons",
        title='"/><script>alert(1)</script>',
        description="it's & <b>",
        bars=[Bar('<g onload="x()">', 3)],
        colour="#c2410c",
        empty_text="",
    )
    assert "<script" not in svg and "<b>" not in svg and '<g onload="' not in svg
    root = parsed(svg)
    assert root.findtext(f"{NS}title") == '"/><script>alert(1)</script>'
    assert xml_text("<&>\"'") == "&lt;&amp;&gt;&quot;&#x27;"


def test_bar_lengths_are_proportional_and_the_longest_fills_the_room() -> None:
    root = parsed(
        horizontal_bars(
            chart_id="reasons",
            title="t",
            description="d",
            bars=[Bar("a", 40), Bar("b", 10), Bar("c", 0)],
            colour="#c2410c",
            empty_text="",
        )
    )
    widths = [float(r.get("width", "0")) for r in root.iter(f"{NS}rect")]
    assert len(widths) == 2  # a zero count draws no bar, only its number
    assert widths[0] == pytest.approx(4 * widths[1])
    assert "0" in [t.text for t in root.iter(f"{NS}text")]


def test_stacked_columns_stack_the_series_in_order() -> None:
    root = parsed(
        stacked_columns(
            chart_id="decisions",
            title="t",
            description="d",
            categories=["09:00", "10:00"],
            series=[Series("allowed", [3, 0], "#0b5fff"), Series("denied", [1, 4], "#c2410c")],
        )
    )
    groups = [g for g in root.iter(f"{NS}g")]
    first = [(r.get("fill"), float(r.get("height", "0"))) for r in groups[0].iter(f"{NS}rect")]
    assert [fill for fill, _ in first] == ["#0b5fff", "#c2410c"]
    assert first[0][1] == pytest.approx(3 * first[1][1])
    second = [r.get("fill") for r in groups[1].iter(f"{NS}rect")]
    assert second == ["#c2410c"]  # nothing drawn for a zero


@pytest.mark.parametrize(
    ("maximum", "top", "step"),
    [
        (0, 1, 1),
        (1, 1, 1),
        (3, 3, 1),
        (4, 4, 1),
        (5, 6, 2),
        (9, 10, 5),
        (17, 20, 5),
        (999, 1000, 500),
    ],
)
def test_value_axis_scale(maximum: int, top: int, step: int) -> None:
    assert nice_scale(maximum) == (top, step)


@given(st.integers(min_value=0, max_value=10**15))
def test_value_axis_covers_the_maximum_in_at_most_four_whole_steps(maximum: int) -> None:
    top, step = nice_scale(maximum)
    assert top >= maximum and top % step == 0 and top // step <= 4


def test_long_labels_are_cut_to_fit() -> None:
    assert fit("short", 100, 10) == "short"
    cut = fit("理由" * 40, 100, 10)
    assert cut.endswith("…") and len(cut) < 12


@pytest.mark.parametrize(
    "call",
    [
        lambda: horizontal_bars(
            chart_id="Bad Id", title="", description="", bars=[], colour="#000000", empty_text=""
        ),
        lambda: horizontal_bars(
            chart_id="ok", title="", description="", bars=[], colour="red", empty_text=""
        ),
        lambda: horizontal_bars(
            chart_id="ok",
            title="",
            description="",
            bars=[Bar("x", -1)],
            colour="#000000",
            empty_text="",
        ),
        lambda: stacked_columns(
            chart_id="ok",
            title="",
            description="",
            categories=["a", "b"],
            series=[Series("s", [1], "#000000")],
        ),
    ],
)
def test_bad_input_is_refused(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]
