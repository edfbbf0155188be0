"""Names, following the reference converter (``OasImportConverter``): kebab-case everywhere.

``listAllPets`` → ``list-all-pets``; ``Petstore API`` → ``petstore-api``; the path ``/pets/{petId}``
names the resource ``pets-pet-id``; an operation without an operationId is named from its method and
path (``DELETE /pets/{petId}`` → ``delete-pets-pet-id``). Two operations that would share a name get
``-2``, ``-3``, ... in document order, so names are stable and never collide.
"""

from __future__ import annotations

import re

_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]+")


def kebab(text: str) -> str:
    return _NOT_ALNUM.sub("-", _CAMEL.sub(r"\1-\2", text)).strip("-").lower()


def resource_name(path: str) -> str:
    return kebab(path) or "root"


def operation_name(operation_id: str | None, method: str, path: str) -> str:
    return kebab(operation_id or "") or f"{method.lower()}-{resource_name(path)}"


def env_name(*parts: str) -> str:
    """A SCREAMING_SNAKE_CASE variable name (the schema's BindingVariableName)."""
    name = "_".join(kebab(part).replace("-", "_").upper() for part in parts if kebab(part))
    return name if name[:1].isalpha() else f"API_{name}"


class UniqueNames:
    """Hands out each name once; a repeat gets the first free ``-N`` suffix."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def take(self, name: str) -> str:
        candidate, number = name, 1
        while candidate in self._used:
            number += 1
            candidate = f"{name}-{number}"
        self._used.add(candidate)
        return candidate
