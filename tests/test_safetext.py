"""The sanitizer every untrusted string goes through where models are built
(backend/safetext.py): whatever comes in, what comes out holds no terminal
control, no bidi control, no invisible character; clean text is untouched."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from backend.safetext import FORBIDDEN_CATEGORIES, safe_line, safe_opt, safe_text

# The classes a terminal or a reader can be fooled with, named as the issue names them.
C0 = [chr(c) for c in range(0x20)]
C1 = [chr(c) for c in range(0x80, 0xA0)]
BIDI = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)]
ZERO_WIDTH = [chr(c) for c in (0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF)]
HOSTILE = C0 + ["\x7f"] + C1 + BIDI + ZERO_WIDTH + ["\u2028", "\u2029", "\ud800", "\U000e0041"]

# Any text, with the hostile code points and whole escape sequences over-represented.
hostile_text = st.lists(
    st.one_of(
        st.text(),
        st.sampled_from(HOSTILE),
        st.sampled_from(["\x1b[2J", "\x1b]0;pwned\x07", "\x1b]52;c;cm0gLXJmIH4=\x1b\\", "\x1bP+q\x1b\\", "\x1b]8;;file:///etc\x07x\x1b]8;;\x07", "\x9b31m"]),
    ),
    max_size=12,
).map("".join)


def forbidden(text: str, allowed: str = "") -> list[str]:
    return [c for c in text if c not in allowed and unicodedata.category(c) in FORBIDDEN_CATEGORIES]


def test_every_named_class_is_forbidden():
    for c in HOSTILE:
        assert forbidden(safe_line(c)) == [], repr(c)
        assert safe_line(c) != c and safe_line(c).isprintable()


@settings(max_examples=400)
@given(hostile_text)
def test_a_line_never_holds_a_control_bidi_or_invisible_character(text):
    out = safe_line(text)
    assert forbidden(out) == []
    assert "\x1b" not in out and "\n" not in out and "\r" not in out
    assert safe_line(out) == out  # idempotent: safe once is safe for good


@settings(max_examples=400)
@given(hostile_text)
def test_multi_line_text_keeps_only_newline_and_tab(text):
    out = safe_text(text)
    assert forbidden(out, allowed="\n\t") == []
    assert "\r" not in out
    assert out.count("\n") <= text.count("\n")  # a line is never invented
    assert safe_text(out) == out


@given(st.text().filter(lambda t: not forbidden(t)))
def test_clean_text_comes_back_unchanged(text):
    assert safe_line(text) == text
    assert safe_text(text) == text
    assert safe_opt(text) == text


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp")) | st.sampled_from("\n\t")))
def test_multi_line_text_without_controls_is_unchanged(text):
    assert safe_text(text) == text


def test_sequences_stay_visible_and_inert():
    assert safe_line("a\x1b[2Jb") == "a\u241b[2Jb"
    assert safe_line("\x1b]52;c;QUFB\x07") == "\u241b]52;c;QUFB\u2407"
    assert safe_line("x\u202eevil") == "x<U+202E>evil"
    assert safe_line("\x9b2J") == "<U+009B>2J"
    assert safe_text("one\r\ntwo\rthree") == "one\ntwo\u240dthree"
    assert safe_opt(None) is None and safe_opt(3) == 3


# --- whole documents (ARM JSON) --------------------------------------------------------------

json_docs = st.recursive(
    st.none() | st.booleans() | st.integers() | hostile_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(hostile_text | st.sampled_from(["summary", "name", "message"]), children, max_size=4),
    max_leaves=12,
)


def strings_of(doc, key=None):
    if isinstance(doc, str):
        yield key, doc
    elif isinstance(doc, dict):
        for k, v in doc.items():
            yield None, k
            yield from strings_of(v, k)
    elif isinstance(doc, list):
        for v in doc:
            yield from strings_of(v, key)


@settings(max_examples=300)
@given(json_docs)
def test_a_document_made_safe_holds_only_safe_strings_and_the_original_is_untouched(doc):
    import copy

    from backend.safetext import MULTILINE_KEYS, safe_json

    before = copy.deepcopy(doc)
    out = safe_json(doc)
    assert doc == before
    for key, text in strings_of(out):
        assert forbidden(text, allowed="\n\t" if key in MULTILINE_KEYS else "") == [], (key, text)


@settings(max_examples=300)
@given(json_docs)
def test_json_bytes_called_clean_hold_nothing_to_make_safe(doc):
    """The fast path of list pages: bytes it vouches for need no walk."""
    import orjson

    from backend.safetext import json_is_clean, safe_json

    try:
        raw = orjson.dumps(doc)
    except (TypeError, orjson.JSONEncodeError):  # lone surrogates, big ints: not JSON ARM can send
        return
    if json_is_clean(raw):
        assert safe_json(orjson.loads(raw)) == orjson.loads(raw)
        for _key, text in strings_of(orjson.loads(raw)):
            assert forbidden(text) == []


def test_json_fast_path_knows_harmless_escapes_from_risky_ones():
    from backend.safetext import json_is_clean

    assert json_is_clean(b'{"a":"plain ascii","b":"caf\xc3\xa9","c":"say \\"hi\\"","d":"C:\\\\temp\\\\x"}')
    for risky in (
        b'{"a":"x\\u001b[2J"}',
        b'{"a":"two\\nlines"}',
        b'{"a":"x\\u202e"}',
        b'{"a":"\xe2\x80\xae"}',
        b'{"a":"\xc2\x9b"}',
        b'{"a":"del\x7f"}',
        b'{"a":"C:\\\\\\u001b"}',
    ):
        assert not json_is_clean(risky), risky
