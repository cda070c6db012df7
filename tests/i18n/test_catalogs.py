"""Every string the portal and customer mail show is translated in every catalog.

The messages are extracted the way `pybabel extract -F babel.cfg` does (templates and Python
marked with gettext/ngettext/N_), so a new string left out of a catalog fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from gateway.i18n import LANGUAGES, LOCALE_DIR, SOURCE_LANGUAGE

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = [language for language in LANGUAGES if language != SOURCE_LANGUAGE]


def extracted() -> set[str | tuple[str, ...]]:
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    found: set[str | tuple[str, ...]] = set()
    for _filename, _line, message, _comments, _context in extract_from_dir(ROOT, method_map, options_map):
        found.add(message)
    return found


@pytest.fixture(scope="module")
def messages() -> set[str | tuple[str, ...]]:
    found = extracted()
    assert len(found) > 150  # the templates were read (a wrong babel.cfg finds nothing)
    return found


def catalog(language: str) -> Catalog:
    with (LOCALE_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as source:
        return read_po(source, locale=language)


def untranslated(translations: Catalog, messages: set[str | tuple[str, ...]]) -> list[str]:
    """The messages `translations` lacks, leaves empty (any plural form) or marks fuzzy."""
    missing = []
    for message in messages:
        key = message[0] if isinstance(message, tuple) else message
        entry = translations.get(key)
        strings = entry.string if entry is not None else ""
        if entry is None or entry.fuzzy or not all(strings if isinstance(strings, tuple) else [strings]):
            missing.append(key)
    return sorted(missing)


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_extracted_string_has_a_translation(language: str, messages: set[str | tuple[str, ...]]) -> None:
    assert not untranslated(catalog(language), messages), f"untranslated in {language}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_every_placeholder(language: str) -> None:
    problems = [(message.id, errors) for message, errors in catalog(language).check() if errors]
    assert not problems


def test_a_fuzzy_empty_or_missing_entry_is_reported(messages: set[str | tuple[str, ...]]) -> None:
    """The check above can fail: each kind of gap is reported by name."""
    translations = catalog("de")
    translations["Sign in"].flags.add("fuzzy")
    translations["Sign out"].string = ""
    translations.delete("Save")
    assert untranslated(translations, messages) == ["Save", "Sign in", "Sign out"]
