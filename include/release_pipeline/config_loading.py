"""Reading the YAML files under ``config/`` so that every error can point at a line.

A config error always names the file, the line, the entity (e.g. the OEM) and the
field, says what was expected and, when a known name is close, suggests it.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

try:  # libyaml keeps parsing a 1,000-OEM registry cheap at DAG-parse time
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing from the build
    _Loader = yaml.SafeLoader

Path_ = tuple[Any, ...]

CONFIG_DIR_ENV = "RELEASE_TRAIN_CONFIG_DIR"


def config_dir() -> Path:
    """``$RELEASE_TRAIN_CONFIG_DIR``, else the repository's ``config/``."""
    configured = os.environ.get(CONFIG_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "config"


@dataclass(frozen=True)
class ConfigError:
    file: str
    line: int | None
    entity: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        parts = [p for p in (self.entity, f"field '{self.field}'" if self.field else None) if p]
        return f"{where}: {', '.join(parts) + ': ' if parts else ''}{self.message}"


class InvalidConfig(ValueError):
    """Raised when a config file cannot be used at all; carries every error found."""

    def __init__(self, errors: Iterable[ConfigError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


def did_you_mean(value: object, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a candidate is close to ``value``, else ``''``."""
    close = difflib.get_close_matches(str(value), list(candidates), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass
class LocatedYaml:
    """A parsed YAML document plus the line of every mapping key and sequence item."""

    data: Any
    lines: dict[Path_, int]
    file: str

    def line_of(self, path: Path_) -> int | None:
        """The line of ``path`` or of its closest located ancestor."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None


def load_located_yaml(path: Path, display_name: str | None = None) -> LocatedYaml:
    name = display_name or _display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidConfig([ConfigError(name, None, None, None, f"cannot read: {exc.strerror}")]) from exc
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        lines: dict[Path_, int] = {}
        errors: list[ConfigError] = []
        data = _build(loader, root, (), lines, errors, name) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise InvalidConfig([ConfigError(name, line, None, None, f"not valid YAML: {exc.problem}")]) from exc
    finally:
        loader.dispose()
    if errors:
        raise InvalidConfig(errors)
    return LocatedYaml(data=data, lines=lines, file=name)


def _build(loader, node, path: Path_, lines, errors, name) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in result:
                errors.append(ConfigError(name, key_node.start_mark.line + 1, None, str(key), "duplicate key"))
                continue
            lines[path + (key,)] = key_node.start_mark.line + 1
            result[key] = _build(loader, value_node, path + (key,), lines, errors, name)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, path + (index,), lines, errors, name) for index, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def validation_errors(
    exc: ValidationError,
    model: type[BaseModel],
    located: LocatedYaml,
    base: Path_,
    entity: str | None,
) -> list[ConfigError]:
    """Turn a pydantic error into config errors located in the YAML file."""
    found = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        field = ".".join(str(p) for p in loc) or None
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            known = _field_names(model, loc[:-1])
            message = f"unknown field{did_you_mean(loc[-1], known)}; known fields: {', '.join(known)}"
        elif error["type"] == "missing":
            message = "is required but missing"
        elif "input" in error and error["type"] not in ("model_type", "dict_type"):
            message = f"{message} (got {error['input']!r})"
        found.append(ConfigError(located.file, located.line_of(base + loc), entity, field, message))
    return found


def _field_names(model: type[BaseModel], loc: Path_) -> list[str]:
    """The field names of the (nested) model found at ``loc``."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        info = getattr(current, "model_fields", {}).get(part)
        annotation = getattr(info, "annotation", None)
        current = _model_in(annotation)
        if current is None:
            return []
    # as the YAML spells them: a field's alias where it has one (``from`` for ``sender``)
    return [info.alias or name for name, info in getattr(current, "model_fields", {}).items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
