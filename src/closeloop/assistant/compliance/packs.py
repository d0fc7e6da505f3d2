"""Rule packs: YAML data files shipped in the package, validated with pydantic on load.

``packs/common.yaml`` holds what every pack shares (the quoted articles, the sector cues, the
near-miss phrases and the negation cues); every other ``packs/*.yaml`` is one pack of rules. A
broken pack raises :class:`PackError` naming the file, the entry and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from closeloop.core.errors import DomainError

Category = Literal[
    "absolute_term",
    "efficacy_guarantee",
    "cure_rate",
    "endorsement",
    "investment_guarantee",
    "overpromise",
    "disparagement",
    "false_endorsement",
    "superstition",
    "commercial_bribery",
    "other",
]
Sector = Literal["finance", "cosmetics", "health_food", "drug", "medical", "general"]
Lang = Literal["zh", "en"]

#: when two findings overlap, the category earlier in this list wins (one label per phrase)
CATEGORY_PRIORITY: tuple[str, ...] = (
    "investment_guarantee",
    "cure_rate",
    "efficacy_guarantee",
    "endorsement",
    "false_endorsement",
    "disparagement",
    "absolute_term",
    "superstition",
    "commercial_bribery",
    "other",
    "overpromise",
)


class PackError(DomainError):
    """A rule pack file cannot be loaded; the message names the file, the entry and the field."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="invalid_rule_pack", status=500)


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from exc
    return pattern


Pattern = Annotated[str, AfterValidator(_compiles)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Citation(_Strict):
    law: str = Field(min_length=2)
    article: str = Field(pattern=r"^第\d+条(第\d+款)?(第\d+项)?$")
    quote: str = Field(min_length=4)

    @property
    def label(self) -> str:
        """The citation as reps and the eval set write it: ``广告法第9条第3项``."""
        return f"{self.law}{self.article}"


class SectorOverride(_Strict):
    """What a rule says differently in one sector; an override that cites another law says why in
    its own ``explanation`` (and may give its own ``rewrite``), so a finding never cites one article
    and explains another."""

    category: Category | None = None
    level: int | None = Field(default=None, ge=1, le=3)
    citation: str | None = None
    explanation: str | None = Field(default=None, min_length=4)
    rewrite: str | None = Field(default=None, min_length=4)


class Rule(_Strict):
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    category: Category
    level: int = Field(ge=1, le=3)
    citation: str | None
    explanation: str = Field(min_length=4)
    rewrite: str = Field(min_length=4)
    terms: list[str] = []
    patterns: list[Pattern] = []
    #: the patterns run only when one of these words is in the text (none: always run)
    triggers: list[str] = []
    sectors: list[Sector] | None = None
    by_sector: dict[Sector, SectorOverride] = {}
    delivery: bool = False
    negatable: bool = True

    @field_validator("terms")
    @classmethod
    def _terms_not_blank(cls, terms: list[str]) -> list[str]:
        for term in terms:
            if not term.strip() or term != term.strip():
                raise ValueError(f"term {term!r} is blank or has surrounding spaces")
        return terms


class PackFile(_Strict):
    pack: str = Field(pattern=r"^[a-z0-9_]+$")
    lang: Lang
    title: str
    source: str
    source_excluded: dict[str, str] = {}
    rules: list[Rule] = Field(min_length=1)


class CommonFile(_Strict):
    citations: dict[str, Citation]
    sectors: dict[Sector, list[str]]
    safe: dict[Lang, list[Pattern]]
    negation: dict[Lang, Pattern]


@dataclass(frozen=True)
class RuleLibrary:
    """Everything the matcher needs, validated: the shared data and the packs."""

    common: CommonFile
    packs: tuple[PackFile, ...]

    def citation(self, key: str | None) -> Citation | None:
        return None if key is None else self.common.citations[key]


def _where(error: dict[str, Any], data: Any) -> str:
    """``rules[3] (id 'cure-rate') → patterns[1]`` for a pydantic error location."""
    parts: list[str] = []
    node = data
    for step in error["loc"]:
        if isinstance(step, int):
            parts[-1] = f"{parts[-1]}[{step}]"
            node = node[step] if isinstance(node, list) and step < len(node) else None
            if isinstance(node, dict) and "id" in node:
                parts[-1] += f" (id {node['id']!r})"
        else:
            parts.append(str(step))
            node = node.get(step) if isinstance(node, dict) else None
    return " → ".join(parts)


def _parse(name: str, text: str, model: type[PackFile] | type[CommonFile]) -> Any:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PackError(f"{name}: not valid YAML: {exc}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise PackError(f"{name}: {_where(dict(first), data)}: {first['msg']}") from exc


def load_library(directory: Path | None = None) -> RuleLibrary:
    """Load and validate ``common.yaml`` and every pack in ``directory`` (default: the shipped packs)."""
    if directory is None:
        files = {entry.name: entry.read_text(encoding="utf-8") for entry in _shipped() if entry.name.endswith(".yaml")}
    else:
        files = {path.name: path.read_text(encoding="utf-8") for path in sorted(directory.glob("*.yaml"))}
    if "common.yaml" not in files:
        raise PackError("common.yaml is missing from the rule packs")
    common: CommonFile = _parse("common.yaml", files.pop("common.yaml"), CommonFile)
    packs: list[PackFile] = []
    for name in sorted(files):
        pack: PackFile = _parse(name, files[name], PackFile)
        for index, rule in enumerate(pack.rules):
            keys = [rule.citation, *(override.citation for override in rule.by_sector.values())]
            for key in keys:
                if key is not None and key not in common.citations:
                    raise PackError(f"{name}: rules[{index}] (id {rule.id!r}) → citation: unknown citation {key!r}")
            if rule.citation is None and rule.category != "overpromise":
                raise PackError(f"{name}: rules[{index}] (id {rule.id!r}) → citation: required for {rule.category}")
            if not rule.terms and not rule.patterns:
                raise PackError(f"{name}: rules[{index}] (id {rule.id!r}) → terms: a rule needs terms or patterns")
        packs.append(pack)
    return RuleLibrary(common=common, packs=tuple(packs))


def _shipped() -> list[Any]:
    return sorted(resources.files("closeloop.assistant.compliance").joinpath("packs").iterdir(), key=lambda e: e.name)


@cache
def shipped_library() -> RuleLibrary:
    """The packs that ship with Closeloop, loaded once per process."""
    return load_library()
