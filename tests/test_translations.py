"""The message catalogues: every string the code marks is translated, in English and Russian,
and the build compiles the catalogues into the wheel.

The strings are extracted from the code here exactly as `pybabel extract` does (babel.cfg,
plus `_l` for lazy_gettext), so a new `_("...")` without a translation fails the suite.
"""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from app.web.catalogues import compile_stale
from tests.deploy.wheel import build_wheel

REPO = Path(__file__).resolve().parents[1]
TRANSLATIONS = REPO / "app" / "translations"
LANGUAGES = ("en", "ru")
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None}  # lazy_gettext is imported as _l

# Words a Russian page and the Russian catalogue may keep in Latin letters: the product,
# protocol and standard names, header field names, the language switch's own label.
LATIN_ALLOWED = {
    "Pochta", "POP", "SMTP", "TLS", "STARTTLS", "AUTH", "UIDL", "QUIT", "NUL", "SPF", "DKIM",
    "DMARC", "HTML", "Received", "English",
}
_PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")
_ADDRESS = re.compile(r"\S+@\S+")
_DOTTED = re.compile(r"\b[\w-]+(?:\.[\w-]+)+\b")  # host names, file names, IP addresses
_SLASHED = re.compile(r"\b[\w.+-]+/[\w.+-]+\b")  # content types
_LATIN_WORD = re.compile(r"[A-Za-z]{3,}")


def latin_words(text: str, allowed: set[str] = LATIN_ALLOWED) -> set[str]:
    """The words of three or more Latin letters in `text` that a Russian reader should not
    meet: placeholders, addresses, host and file names and content types are data."""
    for pattern in (_PLACEHOLDER, _ADDRESS, _DOTTED, _SLASHED):
        text = pattern.sub(" ", text)
    return {word for word in _LATIN_WORD.findall(text) if word not in allowed}


def extracted() -> dict[tuple[str | None, str], bool]:
    """(context, msgid) -> is it a plural, for every string the code marks."""
    with (REPO / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    found: dict[tuple[str | None, str], bool] = {}
    for _file, _line, message, _comments, context in extract_from_dir(
        str(REPO), method_map, options_map, keywords=KEYWORDS
    ):
        plural = isinstance(message, tuple)
        found[(context, message[0] if plural else message)] = plural
    return found


def catalogue(language: str) -> Catalog:
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as source:
        return read_po(source, locale=language)


def entries(catalog: Catalog) -> set[tuple[str | None, str]]:
    return {(m.context, m.id[0] if m.pluralizable else m.id) for m in catalog if m.id}


@pytest.fixture(scope="module")
def strings() -> dict[tuple[str | None, str], bool]:
    found = extracted()
    assert len(found) > 200, "the extraction found too few strings: is babel.cfg right?"
    return found


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_marked_string_is_translated(strings, language):
    catalog = catalogue(language)
    problems = []
    for (context, msgid), plural in sorted(strings.items(), key=str):
        message = catalog.get(msgid, context)
        if message is None:
            problems.append(f"missing: {msgid!r}")
        elif message.fuzzy:
            problems.append(f"fuzzy: {msgid!r}")
        elif plural != message.pluralizable:
            problems.append(f"plural forms changed: {msgid!r}")
        elif plural and (len(message.string) != catalog.num_plurals or not all(message.string)):
            problems.append(f"plural forms incomplete: {msgid!r}")
        elif not plural and not message.string:
            problems.append(f"untranslated: {msgid!r}")
    assert not problems, f"{language}: " + "\n".join(problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_obsolete_or_stray_entries(strings, language):
    catalog = catalogue(language)
    assert not catalog.obsolete, f"{language}: obsolete entries {list(catalog.obsolete)}"
    stray = entries(catalog) - set(strings)
    assert not stray, f"{language}: entries no code uses any more: {sorted(stray, key=str)}"


def test_the_template_matches_the_code(strings):
    with (TRANSLATIONS / "messages.pot").open("rb") as source:
        template = read_po(source)
    assert entries(template) == set(strings), "run pybabel extract (DEVELOPERS.md)"


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_placeholders(language):
    catalog = catalogue(language)
    errors = [(m.id, e) for m, errs in catalog.check() for e in errs]
    assert not errors, errors


def test_russian_has_three_plural_forms():
    assert catalogue("ru").num_plurals == 3


def test_russian_translations_leave_no_english_words():
    leftovers = {}
    for message in catalogue("ru"):
        if not message.id:
            continue
        forms = message.string if message.pluralizable else (message.string,)
        words = set().union(*(latin_words(form) for form in forms))
        if words:
            leftovers[message.id] = words
    assert not leftovers, leftovers


def test_english_translations_repeat_the_originals():
    for message in catalogue("en"):
        if message.id:
            assert message.string == message.id, message.id


# -- compiling ------------------------------------------------------------------------------


def _catalogue_copy(tmp_path: Path) -> Path:
    directory = tmp_path / "translations"
    for language in LANGUAGES:
        target = directory / language / "LC_MESSAGES"
        target.mkdir(parents=True)
        shutil.copy(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", target)
    return directory


def test_stale_and_missing_catalogues_are_compiled_and_fresh_ones_left_alone(tmp_path):
    directory = _catalogue_copy(tmp_path)
    assert len(compile_stale(directory)) == 2  # no .mo at all
    assert compile_stale(directory) == []  # all fresh now
    po = directory / "ru" / "LC_MESSAGES" / "messages.po"
    mo = po.with_suffix(".mo")
    older = po.stat().st_mtime - 10
    os.utime(mo, (older, older))
    assert compile_stale(directory) == [mo]
    assert mo.stat().st_mode & 0o777 == 0o644


@pytest.mark.slow
def test_the_wheel_carries_compiled_catalogues_and_no_sources(tmp_path):
    """The build hook (setup.py) compiles the catalogues: nothing compiled is committed, and
    build_wheel copies none from this checkout."""
    names = set(zipfile.ZipFile(build_wheel(tmp_path)).namelist())
    for language in LANGUAGES:
        assert f"app/translations/{language}/LC_MESSAGES/messages.mo" in names
        assert f"app/translations/{language}/LC_MESSAGES/messages.po" not in names
