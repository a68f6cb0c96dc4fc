"""Server-side QR SVG: well-formed, self-contained, accessible, and it encodes what we asked for.

Decoding with a real QR reader uses ``zxing-cpp`` (PyPI wheels, no numpy needed) when installed;
otherwise that test is skipped and the module grid is compared with segno's own matrix.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
import segno
from hypothesis import given
from hypothesis import strategies as st

from trustanchor.web.qr import QRCodeError, qr_svg

SVG_NS = "http://www.w3.org/2000/svg"
LOGIN_URL = (
    "openid4vp://?client_id=trustanchor-verifier&request_uri=https%3A%2F%2Fauth.example.jp"
    "%2Fwallet%2Frequest%2FqPmxiNFCR3QTm19POc8uqPmxiNFCR3QTm19POc8u123"
)
_RUN = re.compile(r"M(\d+) (\d+)h(\d+)v1h-(\d+)z")


def _xml(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - parsing our own output, not untrusted input


def _grid(svg: str) -> list[list[bool]]:
    """Rebuild the module grid from the SVG path (one sub-path per horizontal run)."""
    root = _xml(svg)
    size = int(root.attrib["viewBox"].split()[2])
    path = root.find(f"{{{SVG_NS}}}path")
    assert path is not None
    d = path.attrib["d"]
    assert _RUN.sub("", d) == "", "path holds only module runs"
    grid = [[False] * size for _ in range(size)]
    for x, y, width, back in _RUN.findall(d):
        assert width == back
        for dx in range(int(width)):
            grid[int(y)][int(x) + dx] = True
    return grid


def test_svg_is_well_formed_and_accessible() -> None:
    svg = qr_svg(LOGIN_URL, title="Scan with your wallet app")
    root = _xml(svg)
    assert root.tag == f"{{{SVG_NS}}}svg"
    assert root.attrib["role"] == "img"
    assert root.attrib["aria-label"] == "Scan with your wallet app"
    first = root[0]
    assert first.tag == f"{{{SVG_NS}}}title" and first.text == "Scan with your wallet app"


def test_svg_has_no_external_references_scripts_or_styles() -> None:
    svg = qr_svg(LOGIN_URL, title="Scan")
    without_namespace = svg.replace(f'xmlns="{SVG_NS}"', "", 1)
    for forbidden in ("http", "://", "href", "<script", "style", "<image", "foreignObject", "url("):
        assert forbidden not in without_namespace
    tags = {element.tag for element in _xml(svg).iter()}
    assert tags == {f"{{{SVG_NS}}}{name}" for name in ("svg", "title", "rect", "path")}


def test_title_is_escaped_not_interpreted() -> None:
    title = '</title><script>alert("x")</script> & <b>'
    root = _xml(qr_svg(LOGIN_URL, title=title))
    assert root[0].text == title
    assert root.attrib["aria-label"] == title
    assert all(not element.tag.endswith("script") for element in root.iter())


@given(st.text(min_size=1, max_size=40).filter(lambda t: t.strip()))
def test_any_title_yields_well_formed_xml(title: str) -> None:
    root = _xml(qr_svg("x", title=title))
    assert root.attrib["role"] == "img"


def test_grid_matches_segno_matrix_with_quiet_zone() -> None:
    svg = qr_svg(LOGIN_URL, title="Scan")
    expected = segno.make(LOGIN_URL, error="m", micro=False)
    assert not expected.is_micro
    rows = [[bool(m) for m in row] for row in expected.matrix_iter(border=4)]
    assert _grid(svg) == rows
    # Quiet zone: the 4-module border is light on every side.
    grid = _grid(svg)
    assert not any(grid[0]) and not any(grid[-1]) and not any(row[0] for row in grid)


def test_size_suits_a_phone_camera() -> None:
    root = _xml(qr_svg(LOGIN_URL, title="Scan"))
    modules = int(root.attrib["viewBox"].split()[2])
    assert root.attrib["width"] == root.attrib["height"] == str(modules * 6)
    assert 240 <= modules * 6 <= 480
    bigger = _xml(qr_svg(LOGIN_URL, title="Scan", scale=10))
    assert bigger.attrib["width"] == str(modules * 10)


def test_decodes_with_a_real_qr_reader() -> None:
    zxingcpp = pytest.importorskip(
        "zxingcpp", reason="zxing-cpp not installed (optional test dependency: zxing-cpp)"
    )
    grid = _grid(qr_svg(LOGIN_URL, title="Scan"))
    scale = 4
    height = width = len(grid) * scale
    pixels = bytearray(height * width)
    for y in range(height):
        row = grid[y // scale]
        for x in range(width):
            pixels[y * width + x] = 0 if row[x // scale] else 255
    image = memoryview(pixels).cast("B", (height, width))
    results = zxingcpp.read_barcodes(image)
    assert [result.text for result in results] == [LOGIN_URL]
    assert results[0].format == zxingcpp.BarcodeFormat.QRCode


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"data": ""}, "invalid_data"),
        ({"data": "x" * 2049}, "invalid_data"),
        ({"data": "\U0001f600" * 2000}, "too_long"),
        ({"title": "   "}, "invalid_title"),
        ({"scale": 0}, "invalid_scale"),
        ({"scale": True}, "invalid_scale"),
        ({"css_class": 'qr" onload="x'}, "invalid_class"),
    ],
)
def test_refuses_bad_arguments(kwargs: dict[str, object], reason: str) -> None:
    arguments: dict[str, object] = {"data": LOGIN_URL, "title": "Scan"}
    arguments.update(kwargs)
    with pytest.raises(QRCodeError) as err:
        qr_svg(**arguments)  # type: ignore[arg-type]
    assert err.value.reason == reason


def test_module_does_not_import_flask() -> None:
    import ast
    import inspect

    import trustanchor.web.qr as module

    tree = ast.parse(inspect.getsource(module))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert "flask" not in imported
