"""Flags over settings, the same way for every command.

Each command's settings class reads the environment (pydantic-settings); a flag the user gave
overrides its field, and a flag left out leaves the environment's value or the default. Not a
subcommand (the leading underscore keeps it out of the CLI's registry).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from typing import TypeVar

from pydantic import BaseModel, ValidationError

SettingsT = TypeVar("SettingsT", bound=BaseModel)


def from_flags(
    settings_class: type[SettingsT],
    args: argparse.Namespace,
    fields: Mapping[str, str] | Iterable[str],
    *,
    command: str,
) -> SettingsT | None:
    """`settings_class` with the given flags applied; None after printing why it is invalid.

    `fields` maps each settings field to the argparse attribute holding its flag (a plain list
    when they are spelled alike). The caller exits 2 (bad configuration) on None.
    """
    names = fields if isinstance(fields, Mapping) else {name: name for name in fields}
    given = {field: getattr(args, attribute) for field, attribute in names.items()}
    try:
        return settings_class(**{field: v for field, v in given.items() if v is not None})
    except ValidationError as exc:
        sys.stderr.write(f"forest-mlops {command}: invalid configuration:\n{exc}\n")
        return None
