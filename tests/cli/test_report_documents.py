"""``vqkit report --check`` covers every document that quotes a number: marked numbers must
equal their JSON, generated sections must be current, unmarked measured numbers fail (beyond
the known list), and the check writes nothing, in results/ least of all."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# A marked number of docs/speech_codec.md and the value it reads (read, not copied, so a
# regenerated JSON does not break these tests).
OPEN = "<!-- result: speech_envelope.json results.world_codec[4].pesq .2f -->"
CLOSE = "<!-- /result -->"
PESQ = json.loads((REPO / "results" / "speech_envelope.json").read_text())[
    "results"]["world_codec"][4]["pesq"]
MARKED = f"{OPEN}{PESQ:.2f}{CLOSE}"


def _checksums(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def repo(tmp_path):
    """A copy of README.md, docs/ and results/."""
    shutil.copy(REPO / "README.md", tmp_path / "README.md")
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    shutil.copytree(REPO / "results", tmp_path / "results")
    return tmp_path


def _check(vqkit, root: Path):
    return vqkit("report", "--results", root / "results", "--out", root / "docs" / "results.md",
                 "--check")


def test_the_real_documents_pass_and_the_check_writes_nothing(vqkit, monkeypatch):
    monkeypatch.chdir(REPO)
    results, docs = _checksums(REPO / "results"), _checksums(REPO / "docs")
    readme = (REPO / "README.md").read_bytes()
    code, out, err = vqkit("report", "--check")
    assert code == 0, out + err
    assert "other documents are up to date" in out
    assert _checksums(REPO / "results") == results
    assert _checksums(REPO / "docs") == docs and (REPO / "README.md").read_bytes() == readme


def test_a_wrong_marked_number_fails_and_report_rewrites_it(vqkit, repo):
    doc = repo / "docs" / "speech_codec.md"
    assert MARKED in doc.read_text()
    wrong = f"{PESQ + 0.1:.2f}"
    doc.write_text(doc.read_text().replace(MARKED, f"{OPEN}{wrong}{CLOSE}", 1))
    before = _checksums(repo / "results")
    code, out, err = _check(vqkit, repo)
    assert code == 1
    assert "speech_codec.md is out of date" in err and wrong in out
    assert _checksums(repo / "results") == before  # --check writes nothing there
    assert vqkit("report", "--results", repo / "results", "--out",
                 repo / "docs" / "results.md")[0] == 0
    assert MARKED in doc.read_text()
    assert _check(vqkit, repo)[0] == 0


def test_a_changed_json_makes_the_marked_number_stale(vqkit, repo):
    path = repo / "results" / "speech_envelope.json"
    data = json.loads(path.read_text())
    data["results"]["world_codec"][4]["pesq"] = PESQ + 0.02
    path.write_text(json.dumps(data))
    code, out, _ = _check(vqkit, repo)
    assert code == 1 and f"{PESQ + 0.02:.2f}" in out


def test_an_unmarked_number_fails(vqkit, repo):
    doc = repo / "docs" / "image_codec.md"
    doc.write_text(doc.read_text() + "\nThe codec now reaches 31.4 dB on the test tiles.\n")
    code, _, err = _check(vqkit, repo)
    assert code == 1
    assert "unmarked number '31.4 dB'" in err and "image_codec.md" in err
    # The same sentence quoting the paper is not a measurement of ours.
    doc.write_text(doc.read_text().replace("The codec now reaches", "The paper reaches"))
    assert _check(vqkit, repo)[0] == 0


def test_a_marked_number_that_names_no_json_value_fails(vqkit, repo):
    doc = repo / "README.md"
    doc.write_text(doc.read_text() + "\nWe got <!-- result: porcupine.json results.nope .2f -->"
                   "1.00<!-- /result --> bits.\n")
    code, _, err = _check(vqkit, repo)
    assert code == 1 and "'nope'" in err


def test_a_known_unmarked_number_that_is_gone_fails(vqkit, repo):
    """Marking or removing a number of the known list requires deleting its line."""
    # The list only shrinks in the real repository, so this test plants its own known number
    # (in the copy) rather than rely on one that a later commit marks.
    known = repo / "docs" / "unmarked_numbers.tsv"
    doc = repo / "README.md"
    sentence = "The planted run took 8 minutes."
    doc.write_text(doc.read_text() + f"\n{sentence}\n")
    assert "unmarked number '8 minutes'" in _check(vqkit, repo)[2]
    row = f"README.md\t8 minutes\t{sentence}"
    known.write_text(known.read_text() + row + "\n")
    assert _check(vqkit, repo)[0] == 0
    doc.write_text(doc.read_text().replace(sentence, "The planted run took a few minutes."))
    code, _, err = _check(vqkit, repo)
    assert code == 1 and "no longer in the documents" in err and "'8 minutes'" in err
    known.write_text(known.read_text().replace(row + "\n", ""))
    assert _check(vqkit, repo)[0] == 0


def test_a_stale_generated_section_fails(vqkit, repo):
    doc = repo / "docs" / "multi_codebook.md"
    text = doc.read_text()
    start = text.index("<!-- results-section: aq-toy -->")
    doc.write_text(text[:start] + text[start:].replace("AVQ < RVQ < PVQ", "RVQ < AVQ < PVQ", 1))
    code, out, err = _check(vqkit, repo)
    assert code == 1 and "multi_codebook.md is out of date" in err
