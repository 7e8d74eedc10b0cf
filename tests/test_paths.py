"""``parse_dropped_paths``: every spelling terminals use when a file is dropped or pasted."""

from __future__ import annotations

import os

import pytest

from jobtui.engine.paths import parse_dropped_paths

HOME = os.path.expanduser("~")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/a b", ["/a b"]),  # unquoted, with a space (continuation heuristic)
        ("'/a b'", ["/a b"]),
        ('"/a b"', ["/a b"]),
        ("/a\\ b", ["/a b"]),
        ("file:///a%20b", ["/a b"]),
        ("file://localhost/a%20b", ["/a b"]),
        ("FILE://LOCALHOST/a", ["/a"]),
        ("file:/a%20b", ["/a b"]),
        ("file:///", ["/"]),
        ("/plain/path.pdf", ["/plain/path.pdf"]),
        ("relative/x.pdf", ["relative/x.pdf"]),
    ],
)
def test_single_spellings(text: str, expected: list[str]) -> None:
    assert parse_dropped_paths(text) == expected


@pytest.mark.parametrize("suffix", [" ", "\n", "\r\n", "  \n ", "\t", " \n\n"])
def test_trailing_whitespace_is_ignored(suffix: str) -> None:
    for text in ("'/a b'", "/a\\ b", "file:///a%20b", '"/a b"'):
        assert parse_dropped_paths(text + suffix) == ["/a b"]
        assert parse_dropped_paths(suffix + text) == ["/a b"]


def test_blank_input() -> None:
    assert parse_dropped_paths("") == []
    assert parse_dropped_paths("   \n\t ") == []
    assert parse_dropped_paths("''") == []  # an empty quoted word is no path


def test_tilde_is_expanded() -> None:
    assert parse_dropped_paths("~/x") == [os.path.join(HOME, "x")]
    assert parse_dropped_paths("'~/my docs'") == [os.path.join(HOME, "my docs")]
    assert parse_dropped_paths("~") == [HOME]
    # A tilde inside a path is an ordinary character.
    assert parse_dropped_paths("/a/~b") == ["/a/~b"]


def test_several_paths_separated_by_spaces() -> None:
    text = "'/a b/one.pdf' '/c/two.pdf' /d\\ e/three.pdf file:///f%20g/four.pdf"
    assert parse_dropped_paths(text) == [
        "/a b/one.pdf",
        "/c/two.pdf",
        "/d e/three.pdf",
        "/f g/four.pdf",
    ]


def test_several_plain_absolute_paths_on_one_line() -> None:
    assert parse_dropped_paths("/a/x.pdf /b/y.pdf ~/z") == [
        "/a/x.pdf",
        "/b/y.pdf",
        os.path.join(HOME, "z"),
    ]


def test_several_paths_one_per_line_mixed_spellings() -> None:
    text = "'/a b'\n\"/c d\"\n/e\\ f\nfile:///g%20h\n~/i j\n"
    assert parse_dropped_paths(text) == ["/a b", "/c d", "/e f", "/g h", os.path.join(HOME, "i j")]


def test_unquoted_path_with_spaces_keeps_exact_spacing() -> None:
    assert parse_dropped_paths("/home/me/My  Files/a b.pdf") == ["/home/me/My  Files/a b.pdf"]
    # ... but a following absolute path starts a new one
    assert parse_dropped_paths("/x/My Files /y/z") == ["/x/My Files", "/y/z"]


def test_relative_words_are_separate_paths() -> None:
    # No absolute start: a person typed several relative names.
    assert parse_dropped_paths("a.pdf b.pdf") == ["a.pdf", "b.pdf"]
    assert parse_dropped_paths("./a b") == ["./a", "b"]


def test_quoted_word_is_never_merged_with_its_neighbour() -> None:
    assert parse_dropped_paths("'/a b' c") == ["/a b", "c"]
    assert parse_dropped_paths("/a 'b c'") == ["/a", "b c"]


def test_shell_concatenation_and_escaped_quotes() -> None:
    assert parse_dropped_paths("'/it'\\''s here.pdf'") == ["/it's here.pdf"]
    assert parse_dropped_paths('"/say \\"hi\\".pdf"') == ['/say "hi".pdf']
    assert parse_dropped_paths("/a\\'b") == ["/a'b"]
    # Single quotes keep backslashes literally; double quotes keep unknown escapes.
    assert parse_dropped_paths("'/a\\b'") == ["/a\\b"]
    assert parse_dropped_paths('"/a\\b"') == ["/a\\b"]


def test_newline_inside_quotes_belongs_to_the_path() -> None:
    assert parse_dropped_paths("'/a\nb' /c") == ["/a\nb", "/c"]


def test_backslash_newline_continues_the_line() -> None:
    assert parse_dropped_paths("/a/very/long\\\n/path") == ["/a/very/long/path"]


def test_unclosed_quote_runs_to_the_end() -> None:
    assert parse_dropped_paths("'/a b") == ["/a b"]
    assert parse_dropped_paths('"/a b') == ["/a b"]


def test_lone_trailing_backslash_is_kept() -> None:
    assert parse_dropped_paths("/a\\") == ["/a\\"]


def test_file_url_decoding() -> None:
    assert parse_dropped_paths("file:///tmp/%C3%9Cbung%20sch%C3%B6n.pdf") == [
        "/tmp/Übung schön.pdf"
    ]
    assert parse_dropped_paths("file:///a%23b.pdf") == ["/a#b.pdf"]
    assert parse_dropped_paths("'file:///a%20b'") == ["/a b"]
    # Another host cannot be a local file; it stays visible as //host/path.
    assert parse_dropped_paths("file://server/share/x.pdf") == ["//server/share/x.pdf"]


def test_non_ascii_and_tabs() -> None:
    assert parse_dropped_paths("'/Dokumente/Größe.pdf'\t/x/ü.pdf") == [
        "/Dokumente/Größe.pdf",
        "/x/ü.pdf",
    ]


def test_duplicates_are_dropped_in_order() -> None:
    assert parse_dropped_paths("/a '/a' file:///a /b /a") == ["/a", "/b"]


def test_nul_bytes_are_dropped() -> None:
    assert parse_dropped_paths("/a\x00b") == ["/ab"]


def test_does_not_touch_the_file_system(tmp_path) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "does not exist.pdf"
    assert parse_dropped_paths(f"'{missing}'") == [str(missing)]
