"""Output names made from untrusted text stay one safe path component."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from backmice._names import safe_name

SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


@given(st.one_of(st.text(), st.binary()))
def test_any_text_gives_one_safe_component(text):
    name = safe_name(text)
    assert SAFE.fullmatch(name), name
    assert name not in (".", "..") and "/" not in name and "\\" not in name
    assert len(name) <= 80


def test_plain_names_are_kept_and_changed_names_stay_distinct():
    assert safe_name("study_01") == "study_01"
    assert safe_name("../../etc/passwd").startswith("etc_passwd-")
    assert safe_name("a/b") != safe_name("a_b")
    assert safe_name("x" * 200) != safe_name("x" * 201)
    assert safe_name("CON").startswith("xCON")
    assert safe_name("Müller^Hans").startswith("Muller_Hans")
