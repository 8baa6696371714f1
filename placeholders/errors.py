"""Every error the placeholder engine raises, in one tree.

```
PlaceholderError                  base; never raised directly
├── PlaceholderProblems           several problems found in one pass; .problems lists them
├── UnknownPlaceholder            a %name% in the graph that nothing declares or gives
├── MissingValue                  a declared %name% in the graph with no value and no default
├── InvalidValue                  a given value cannot fill its placeholder
│   ├── WrongType                 it cannot be read as the declared type
│   ├── OutOfRange                it is below the minimum or above the maximum
│   └── NotAChoice                it is not one of the declared choices
├── InvalidSpec                   a placeholder declaration contradicts itself
├── InvalidCustomPlaceholder      a find/replace pair cannot be used
├── MalformedGraph                the graph is not an API-format graph
├── MissingUpload                 an upload marker was left without a server filename
├── UnknownOption                 an aspect, tier or style name that does not exist
└── InvalidSize                   a width/height request that cannot be met
```

Each exception keeps its context as attributes and words its message from them in
``__str__``: what is wrong, where (node, input, placeholder, value received) and what to do.
The orchestrator wraps these once, at its own boundary, adding the workflow's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from placeholders.graph import Site


def _did_you_mean(suggestion: str | None) -> str:
    return f" (did you mean %{suggestion}%?)" if suggestion else ""


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


class PlaceholderError(Exception):
    """Base of every placeholder error; never raised directly."""


class PlaceholderProblems(PlaceholderError):
    """Raised when one pass found one or more problems; ``problems`` holds each of them."""

    def __init__(self, problems: Sequence[PlaceholderError]) -> None:
        super().__init__(problems)
        self.problems = tuple(problems)

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} placeholder problems:"]
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)


class UnknownPlaceholder(PlaceholderError):
    """A ``%name%`` in the graph that is neither declared nor given a value."""

    def __init__(self, site: Site, placeholder: str, suggestion: str | None = None) -> None:
        super().__init__(site, placeholder, suggestion)
        self.site = site
        self.placeholder = placeholder
        self.suggestion = suggestion

    def __str__(self) -> str:
        hint = _did_you_mean(self.suggestion) or (
            "; give it a value, declare it in the workflow's metadata, or remove it"
        )
        return f"{self.site}: unknown placeholder %{self.placeholder}%{hint}"


class MissingValue(PlaceholderError):
    """A declared ``%name%`` in the graph that has no value and no default."""

    def __init__(
        self, site: Site, placeholder: str, help: str = "", suggestion: str | None = None
    ) -> None:
        super().__init__(site, placeholder, help, suggestion)
        self.site = site
        self.placeholder = placeholder
        self.help = help
        self.suggestion = suggestion

    def __str__(self) -> str:
        about = f" ({self.help})" if self.help else ""
        hint = _did_you_mean(self.suggestion) or "; give a value or declare a default"
        return f"{self.site}: no value for placeholder %{self.placeholder}%{about}{hint}"


class InvalidValue(PlaceholderError):
    """A given value cannot fill its placeholder; ``reason`` says why, ``hint`` what to do."""

    def __init__(self, placeholder: str, value: object, reason: str, hint: str = "") -> None:
        super().__init__(placeholder, value, reason, hint)
        self.placeholder = placeholder
        self.value = value
        self.reason = reason
        self.hint = hint

    def __str__(self) -> str:
        hint = f"; {self.hint}" if self.hint else ""
        return f"placeholder %{self.placeholder}%: {_show(self.value)} {self.reason}{hint}"


class WrongType(InvalidValue):
    """A given value cannot be read as its placeholder's declared type."""


class OutOfRange(InvalidValue):
    """A given number is below the declared minimum or above the declared maximum."""


class NotAChoice(InvalidValue):
    """A given value is not one of the placeholder's declared choices."""


class InvalidSpec(PlaceholderError):
    """A placeholder declaration contradicts itself (bad name, default of the wrong type)."""

    def __init__(self, placeholder: str, reason: str) -> None:
        super().__init__(placeholder, reason)
        self.placeholder = placeholder
        self.reason = reason

    def __str__(self) -> str:
        return f"declaration of placeholder %{self.placeholder}%: {self.reason}"


class InvalidCustomPlaceholder(PlaceholderError):
    """A custom find/replace pair cannot be used (bad find name, replace not text)."""

    def __init__(self, find: object, reason: str) -> None:
        super().__init__(find, reason)
        self.find = find
        self.reason = reason

    def __str__(self) -> str:
        return f"custom placeholder {_show(self.find)}: {self.reason}"


class MalformedGraph(PlaceholderError):
    """The graph is not API format: a node is not an object, or its inputs are not one."""

    def __init__(self, node_id: str, reason: str) -> None:
        super().__init__(node_id, reason)
        self.node_id = node_id
        self.reason = reason

    def __str__(self) -> str:
        return (
            f"node {self.node_id}: {self.reason}; "
            "export the workflow again with ComfyUI's API-format export"
        )


class MissingUpload(PlaceholderError):
    """An upload marker in a rendered graph has no server filename to replace it with."""

    def __init__(self, placeholder: str, given: Sequence[str]) -> None:
        super().__init__(placeholder, given)
        self.placeholder = placeholder
        self.given = tuple(given)

    def __str__(self) -> str:
        given = ", ".join(self.given) or "none"
        return (
            f"image for placeholder %{self.placeholder}% was not uploaded "
            f"(filenames given for: {given}); upload it and pass the returned filename"
        )


class UnknownOption(PlaceholderError):
    """An aspect ratio, resolution tier or style name that does not exist."""

    def __init__(self, kind: str, given: str, valid: Sequence[str]) -> None:
        super().__init__(kind, given, valid)
        self.kind = kind
        self.given = given
        self.valid = tuple(valid)

    def __str__(self) -> str:
        return f"unknown {self.kind} {self.given!r}; choose one of: {', '.join(self.valid)}"


class InvalidSize(PlaceholderError):
    """A width/height request that cannot be met (non-positive, half given, over budget)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason
