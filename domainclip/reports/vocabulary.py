"""Findings vocabularies: what to look for in reports and how to prompt for it.

A vocabulary YAML is the one place a recipe says which findings exist, the words
radiologists use for them, and the prompt templates for zero-shot diagnosis::

    description: demo abdominal/chest CT findings
    templates:                       # [positive, negative]; default CT-CLIP's pair
      - ["{finding}.", "not {finding}."]
      - ["there is {finding}.", "there is no {finding}."]
    negatives: prompts               # optional: "other_findings" contrasts each finding with the others
    findings:
      - name: kidney stone           # canonical name = column name in vector CSVs
        synonyms: [nephrolithiasis, renal calculus, renal calculi]   # literal phrases
        paraphrases: ['calcul(?:us|i)\\s+in\\s+the\\s+(?:\\w+\\s+)?kidneys?']   # regular expressions
        absent_paraphrases: ['kidneys?\\s+(?:are\\s+)?free\\s+of\\s+stones?']   # regexes stating it absent
        prompt_terms: [kidney stone]  # optional: the phrases zero-shot prompts use; default the name
    negation_cues: {pre: [...], post: [...]}       # optional, added to the package defaults
    uncertainty_cues: {pre: [...], post: [...]}
    historical_cues: {pre: [...], post: [...]}      # "history of", "status post": not this study
    pseudo_cues: [...]
    terminators: [...]
    ignored_sections: [...]

Why zero-shot prompts use ``prompt_terms`` (default: the name alone) and not every synonym:
synonyms are there to *read* reports, and many are rare in any one institution's reports
("hydrothorax", "AAA"). A text tower trained on those reports embeds a phrase it has barely
seen poorly, and averaging such prompts into the ensemble blurs it: on the CT quickstart the
name alone beat the synonym ensemble (``benchmarks/ct_zeroshot_prompts.py`` prints both).
A model with a pretrained text tower may list more terms.

Why ``negatives: other_findings``: a binary zero-shot score contrasts a finding's positive prompts with a
negative. The negated prompts ("without X.") work where the texts negate (radiology reports say "no X" all the
time); captions say what is there and hardly ever what is not, so a text tower trained on them reads "without X."
as X, and the pair cancels out. Contrasting X with the mean of every other finding's positive prompts ("something
else this vocabulary names") needs no negation; it is CLIP's class softmax reduced to one class against the rest.

Why ``absent_paraphrases``: some absences never name the finding ("margins are free of tumor"
for a positive margin, "0/12 lymph nodes" for nodal metastasis), so no negation cue can reach it.

Unknown keys, duplicate names or terms, bad regular expressions and templates without
``{finding}`` are :class:`~domainclip.errors.RecipeError` naming the file, the key and,
for a file, its line.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from domainclip.errors import RecipeError
from domainclip.reports.cues import CueLists

CT_CLIP_TEMPLATES: tuple[tuple[str, str], ...] = (("{finding}.", "not {finding}."),)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _CueBlock(_Strict):
    pre: list[str] = Field(default_factory=list, description="cues that scope forward ('no X')")
    post: list[str] = Field(default_factory=list, description="cues that scope backward ('X is not seen')")


class _FindingSpec(_Strict):
    name: str = Field(min_length=1)
    synonyms: list[str] = Field(default_factory=list)
    paraphrases: list[str] = Field(default_factory=list)
    absent_paraphrases: list[str] = Field(default_factory=list)
    prompt_terms: list[str] = Field(default_factory=list)

    @field_validator("synonyms", "prompt_terms")
    @classmethod
    def _non_empty_terms(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value.strip():
                raise ValueError("terms must not be empty strings")
        return values

    @field_validator("paraphrases", "absent_paraphrases")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                compiled = re.compile(pattern, re.IGNORECASE)
            except re.error as exc:
                raise ValueError(f"paraphrase {pattern!r} is not a valid regular expression: {exc}") from None
            if compiled.match(""):
                raise ValueError(f"paraphrase {pattern!r} matches the empty string")
        return patterns


class _VocabularySpec(_Strict):
    description: str = ""
    findings: list[_FindingSpec] = Field(min_length=1)
    templates: list[tuple[str, str]] | None = None
    negatives: Literal["prompts", "other_findings"] = "prompts"
    negation_cues: _CueBlock = Field(default_factory=_CueBlock)
    uncertainty_cues: _CueBlock = Field(default_factory=_CueBlock)
    historical_cues: _CueBlock = Field(default_factory=_CueBlock)
    pseudo_cues: list[str] = Field(default_factory=list)
    terminators: list[str] = Field(default_factory=list)
    ignored_sections: list[str] = Field(default_factory=list)

    @field_validator("templates")
    @classmethod
    def _templates_have_one_placeholder(cls, pairs: list[tuple[str, str]] | None) -> list[tuple[str, str]] | None:
        for index, pair in enumerate(pairs or []):
            for template in pair:
                try:
                    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
                except ValueError as exc:  # unbalanced braces
                    raise ValueError(f"pair {index}: template {template!r}: {exc}") from None
                if fields != ["finding"]:
                    raise ValueError(
                        f"pair {index}: template {template!r} must contain '{{finding}}' exactly once "
                        "and no other '{...}' field"
                    )
        return pairs

    @model_validator(mode="after")
    def _unique_names(self) -> _VocabularySpec:
        seen: set[str] = set()
        for finding in self.findings:
            key = finding.name.strip().lower()
            if key in seen:
                raise ValueError(f"finding name {finding.name!r} appears twice")
            seen.add(key)
        return self


@dataclass(frozen=True)
class Finding:
    """One finding: its canonical name, literal synonyms, paraphrase regexes and the phrases
    zero-shot prompts use (empty: the name)."""

    name: str
    synonyms: tuple[str, ...] = ()
    paraphrases: tuple[str, ...] = ()
    prompt_terms: tuple[str, ...] = ()
    absent_paraphrases: tuple[str, ...] = ()

    @property
    def zeroshot_terms(self) -> list[str]:
        """The phrases that fill a template's ``{finding}`` for zero-shot diagnosis."""
        return list(self.prompt_terms) or [self.name]

    @property
    def terms(self) -> tuple[str, ...]:
        """The literal phrases that mention this finding (the name first)."""
        return (self.name, *(s for s in self.synonyms if s.lower() != self.name.lower()))


@dataclass(frozen=True)
class Vocabulary:
    """A validated findings vocabulary (see the module docstring for the YAML)."""

    findings: list[Finding]
    templates: list[tuple[str, str]] = field(default_factory=lambda: list(CT_CLIP_TEMPLATES))
    cues: CueLists = field(default_factory=CueLists)
    description: str = ""
    source: str = "<memory>"
    negatives: Literal["prompts", "other_findings"] = "prompts"  # see the module docstring

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.findings]

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        """Read and validate a vocabulary YAML file."""
        path = Path(path)
        if not path.is_file():
            raise RecipeError(f"{path}: vocabulary file not found")
        try:
            text = path.read_text(encoding="utf-8")
            data, root = yaml.safe_load(text), yaml.compose(text)
        except yaml.YAMLError as exc:
            raise RecipeError(f"{path}: not valid YAML: {exc}") from None
        return cls.from_dict(data, source=str(path), _node=root)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<memory>", _node: yaml.Node | None = None) -> Vocabulary:
        """Validate an already-parsed vocabulary mapping; ``source`` names it in errors (``_node``, the
        composed YAML of a file, adds the line of each problem)."""
        if not isinstance(data, dict):
            raise RecipeError(
                f"{source}: a vocabulary must be a mapping with a 'findings' list, got {type(data).__name__}"
            )
        try:
            spec = _VocabularySpec.model_validate(data)
        except ValidationError as exc:
            problems = [(list(e["loc"]), _message(e)) for e in exc.errors()]
            raise RecipeError(f"{source}: invalid vocabulary\n" + _describe(problems, data, _node)) from None
        if duplicates := _duplicate_terms(spec):
            raise RecipeError(f"{source}: invalid vocabulary\n" + _describe(duplicates, data, _node))
        cues = CueLists().extended(
            negation_pre=spec.negation_cues.pre,
            negation_post=spec.negation_cues.post,
            uncertainty_pre=spec.uncertainty_cues.pre,
            uncertainty_post=spec.uncertainty_cues.post,
            historical_pre=spec.historical_cues.pre,
            historical_post=spec.historical_cues.post,
            pseudo=spec.pseudo_cues,
            terminators=spec.terminators,
            ignored_sections=[s.lower() for s in spec.ignored_sections],
        )
        findings = [
            Finding(
                f.name.strip(),
                tuple(f.synonyms),
                tuple(f.paraphrases),
                tuple(f.prompt_terms),
                tuple(f.absent_paraphrases),
            )
            for f in spec.findings
        ]
        templates = [tuple(pair) for pair in spec.templates] if spec.templates else list(CT_CLIP_TEMPLATES)
        return cls(
            findings=findings,
            templates=templates,
            cues=cues,
            description=spec.description,
            source=source,
            negatives=spec.negatives,
        )

    def finding(self, name: str) -> Finding:
        for finding in self.findings:
            if finding.name == name:
                return finding
        raise RecipeError(f"{self.source}: no finding named {name!r}; known findings: {self.names}")

    def subset(self, names: Sequence[str]) -> Vocabulary:
        """The same vocabulary restricted to ``names``, in that order (recipe ``data.findings``)."""
        return Vocabulary(
            findings=[self.finding(n) for n in names],
            templates=list(self.templates),
            cues=self.cues,
            description=self.description,
            source=self.source,
            negatives=self.negatives,
        )

    def prompts(self, name: str, *, with_synonyms: bool = False) -> list[tuple[str, str]]:
        """(positive, negative) prompt pairs for zero-shot diagnosis of finding ``name``.

        The finding's ``prompt_terms`` (default: its name) fill the templates; with
        ``with_synonyms`` the name and every synonym do, for CONCH-style prompt ensembles
        (average the embeddings of all positives, of all negatives).
        """
        finding = self.finding(name)
        terms = finding.terms if with_synonyms else finding.zeroshot_terms
        return [(pos.format(finding=t), neg.format(finding=t)) for t in terms for pos, neg in self.templates]


def _duplicate_terms(spec: _VocabularySpec) -> list[tuple[list[Any], str]]:
    """A term under two findings would mark both wherever it is read: each repeat, where it is and which two."""
    owner: dict[str, str] = {}
    problems: list[tuple[list[Any], str]] = []
    for index, finding in enumerate(spec.findings):
        positions = [(["name"], finding.name), *((["synonyms", k], t) for k, t in enumerate(finding.synonyms))]
        for position, term in positions:
            key = term.strip().lower()
            first = owner.setdefault(key, finding.name)
            if first != finding.name:
                message = f"term {key!r} is listed under both {first!r} and {finding.name!r}"
                problems.append((["findings", index, *position], message))
    return problems


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key is missing"
    return str(error["msg"]).removeprefix("Value error, ")


def _describe(problems: list[tuple[list[Any], str]], data: dict[str, Any], node: yaml.Node | None) -> str:
    """One line per problem: dotted key (with the finding's name when known), its line when read from a file,
    and what is wrong."""
    lines = []
    for loc, message in problems:
        line = _line_of(node, loc)
        where = f" (line {line})" if line else ""
        lines.append(f"  - {_format_loc(loc, data)}{where}: {message}")
    return "\n".join(lines)


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (or of its deepest existing parent: a missing key's mapping)."""
    for item in loc:
        child = None
        if isinstance(node, yaml.MappingNode) and isinstance(item, str):
            child = next((value for key, value in node.value if key.value == item), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(item, int) and item < len(node.value):
            child = node.value[item]
        if child is None:
            break
        node = child
    return node.start_mark.line + 1 if node is not None else None


def _format_loc(loc: list[Any], data: dict[str, Any]) -> str:
    parts: list[str] = []
    for i, item in enumerate(loc):
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]"
            if loc[:i] == ["findings"]:
                name = _finding_name(data, item)
                if name:
                    parts[-1] += f" ({name!r})"
        else:
            parts.append(str(item))
    return ".".join(parts) or "<top level>"


def _finding_name(data: dict[str, Any], index: int) -> str | None:
    findings = data.get("findings")
    if isinstance(findings, list) and index < len(findings) and isinstance(findings[index], dict):
        name = findings[index].get("name")
        return name if isinstance(name, str) else None
    return None


__all__ = ["CT_CLIP_TEMPLATES", "Finding", "Vocabulary"]
