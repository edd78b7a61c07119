"""Citations resolve within the project.

(a) No shipped file points at reference material that does not ship (the private notes the
project was built from); (b) every ``[key]`` citation in the code, the documents and the
tests names an entry of docs/references.md. A citation key is lowercase letters, a 4-digit
year and an optional lowercase tag (``[vali2022nsvq]``, ``[higham2002]``), so Python indexing
(``x[0]``, ``d[key]``) and Markdown links (``[text](url)``) never look like one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCES = ROOT / "docs" / "references.md"

#: What ships and is read by users: checked for stray pointers and for citations.
SHIPPED = ("src", "docs", "README.md", "benchmarks", "scripts")
#: Also checked for citations (not for pointers: this file names them).
CITING = (*SHIPPED, "tests")

FORBIDDEN = re.compile(r"METHODS\.md|DATA\.md|PEERS\.md|DESIGN\.md|STYLE-ANCHORS|\.\./shared")
KEY = r"[a-z]+[0-9]{4}[a-z]*"
CITATION = re.compile(rf"\[({KEY})\]")
ENTRY = re.compile(rf"^- \[({KEY})\] ", flags=re.M)


def _text_files(tops: tuple[str, ...]) -> list[Path]:
    """Every readable text file under ``tops`` (relative to the repository root)."""
    out = []
    for top in tops:
        path = ROOT / top
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for p in candidates:
            if "__pycache__" in p.parts or p == Path(__file__).resolve():
                continue
            data = p.read_bytes()
            if b"\0" in data:
                continue
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            out.append(p)
    return out


def _lines(paths: list[Path]):
    for p in paths:
        for number, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
            yield p.relative_to(ROOT), number, line


def reference_keys() -> set[str]:
    return set(ENTRY.findall(REFERENCES.read_text(encoding="utf-8")))


def stray_pointers(paths: list[Path]) -> list[str]:
    """``file:line: text`` of every mention of a reference file that does not ship."""
    return [f"{f}:{n}: {line.strip()}" for f, n, line in _lines(paths) if FORBIDDEN.search(line)]


def unknown_citations(paths: list[Path], keys: set[str]) -> list[str]:
    """``file:line: [key]`` of every citation whose key has no entry in docs/references.md."""
    return [f"{f}:{n}: [{key}]" for f, n, line in _lines(paths)
            for key in CITATION.findall(line) if key not in keys]


def test_no_pointers_to_reference_files_that_do_not_ship():
    found = stray_pointers(_text_files(SHIPPED))
    assert not found, "cite docs/references.md keys instead of:\n" + "\n".join(found)


def test_every_citation_resolves_to_a_reference_entry():
    keys = reference_keys()
    found = unknown_citations(_text_files(CITING), keys)
    assert not found, "no entry in docs/references.md for:\n" + "\n".join(found)


def test_reference_entries_are_unique_and_many():
    text = REFERENCES.read_text(encoding="utf-8")
    bullets = re.findall(r"^- \[([^\]]*)\]", text, flags=re.M)
    assert [b for b in bullets if not re.fullmatch(KEY, b)] == [], "keys must match " + KEY
    entries = ENTRY.findall(text)
    assert len(entries) == len(set(entries)), sorted(k for k in entries if entries.count(k) > 1)
    assert {"vali2025thesis", "vali2021msvq", "vali2022nsvq", "vali2023rpavq", "vali2023sfvq",
            "vali2025ganlatent", "vali2024porcupine", "vali2026diveq"} <= set(entries)


@pytest.mark.parametrize("text, keys", [
    ("NSVQ ([vali2022nsvq]) and [higham2002] eq. (3.5)", ["vali2022nsvq", "higham2002"]),
    ("x[0], d[key], codebooks[k2], shape[-1], out[::2]", []),
    ("[docs/results.md](docs/results.md), [references](references.md)", []),
    ("[Vali2022nsvq], [vali22nsvq], [vali2022-nsvq], [2022]", []),
])
def test_citation_pattern(text, keys):
    assert CITATION.findall(text) == keys


def test_planted_mistakes_are_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    doc = tmp_path / "docs" / "x.md"
    doc.parent.mkdir()
    doc.write_text("fine [vali2022nsvq]\nsee METHODS.md §3\nand [nobody2099]\n", encoding="utf-8")
    paths = _text_files(("docs",))
    assert stray_pointers(paths) == ["docs/x.md:2: see METHODS.md §3"]
    assert unknown_citations(paths, {"vali2022nsvq"}) == ["docs/x.md:3: [nobody2099]"]
