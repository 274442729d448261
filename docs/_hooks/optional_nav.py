"""MkDocs hook: leave nav entries whose page is not in ``docs/`` out of the nav.

Some pages (``SPEC.md``, ``architecture.md``) are written by other work and may not
be in a given checkout yet. With ``strict: true`` a nav entry naming a missing
file fails the build; this hook drops such entries (and sections left empty) and
logs each at info level, so the site builds either way and shows the page as soon
as it exists. Links *inside* pages are still checked strictly.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.optional_nav")


def _prune(items: list[Any], docs_dir: Path) -> list[Any]:
    kept: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            (title, value), *_ = item.items()
            if isinstance(value, list):
                value = _prune(value, docs_dir)
                if value:
                    kept.append({title: value})
                continue
            item_path = value
        else:
            title, item_path = None, item
        if (
            isinstance(item_path, str)
            and "://" not in item_path
            and not (docs_dir / item_path).is_file()
        ):
            log.info("nav: %s (%s) is not in docs/ yet; left out", title or item_path, item_path)
            continue
        kept.append(item)
    return kept


def on_config(config: Any, **_: Any) -> Any:
    """Prune the nav before MkDocs validates it (mkdocs ``on_config`` event)."""
    if config.get("nav"):
        config["nav"] = _prune(config["nav"], Path(config["docs_dir"]))
    return config
