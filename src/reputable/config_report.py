"""Reports about reputable.toml made from its schema: problems, the effective table, the reference.

:func:`problems_of` turns pydantic's errors into plain :class:`Problem` lines that name the key
as it reads in the file (``[dns] workrs``), the value and the fix, with a "did you mean" hint;
:func:`effective_table` and :func:`to_toml` are `config show`; :func:`reference_markdown` is
the key table of docs/configuration.md (``python -m reputable.config_report``).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from reputable.config_schema import Schema

# -- errors -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in the file: the key path ("dns.workers"), the value and what to do."""

    path: str
    value: Any
    message: str

    def text(self) -> str:
        """Return the problem as one plain line, e.g. ``[dns] workrs = 2: unknown key; ...``."""
        if not self.path:  # an error about the file as a whole (TOML syntax, a missing file)
            return self.message
        where = display_path(self.path)
        if self.message.startswith("unknown table"):
            where = f"[{self.path}]"
        if self.value is _NO_VALUE:
            return f"{where}: {self.message}"
        return f"{where} = {_toml_value(self.value)}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        """Return the problem as JSON-ready data: path, value (None when absent) and message."""
        value = None if self.value is _NO_VALUE else _jsonable(self.value)
        return {"path": self.path, "value": value, "message": self.message}


class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"


_NO_VALUE: Final = _NoValue()
NO_VALUE: Final[Any] = _NO_VALUE


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_key(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    return json.dumps(str(value))


_BARE_KEY: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def _key(name: str) -> str:
    return name if name and set(name) <= _BARE_KEY else json.dumps(name)


def display_path(path: str) -> str:
    """Return *path* as it reads in the file: ``[detectors.mail.harvest] share``, ``user``."""
    parts = _split(path)
    table: list[str] = []
    array = ""  # "[[sinks]] #2" inside the second [[sinks]] table
    model: Any = Schema
    i = 0
    while i < len(parts) - 1 and isinstance(parts[i], str):
        info = model.model_fields.get(parts[i]) if _is_model(model) else None
        if info is None:
            break
        inner, is_dict = _inner_model(info.annotation)
        if inner is None:
            break
        following = parts[i + 1]
        if isinstance(following, int):  # an entry of an array of tables
            if i + 2 >= len(parts):
                break
            name = ".".join([*table, _key(str(parts[i]))])
            array, table = f"[[{name}]] #{following + 1}", []
            i += 2
        elif is_dict:  # a table of tables: [policy.causes.spam]
            if i + 2 >= len(parts):
                break
            table += [_key(str(parts[i])), _key(str(following))]
            i += 2
        else:
            table.append(_key(str(parts[i])))
            i += 1
        model = inner
    rest = ""
    for part in parts[i:]:
        rest += f"[{part}]" if isinstance(part, int) else (f".{_key(part)}" if rest else _key(part))
    head = array + (
        ("." if array else "[") + ".".join(table) + ("" if array else "]") if table else ""
    )
    return f"{head} {rest}".strip() if head else rest or "(top level)"


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _split(path: str) -> list[str | int]:
    """Return the parts of "a.b[2].c"; a key that only looks like an index stays text."""
    out: list[str | int] = []
    for piece in path.split("."):
        match = _INDEXED.fullmatch(piece)
        if match is None:
            out.append(piece)
            continue
        if match.group(1):
            out.append(match.group(1))
        out += [int(n) for n in re.findall(r"\[(\d+)\]", match.group(2))]
    return out


_INDEXED: Final = re.compile(r"([^\[\]]*)((?:\[\d+\])+)")


def _join(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


_KIND: Final = {
    "int_type": "must be a whole number (no quotes)",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number (no quotes)",
    "bool_type": "must be true or false (no quotes)",
    "string_type": "must be text in double quotes",
    "list_type": "must be a list in brackets",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
}


def _target(loc: Sequence[str | int]) -> tuple[type[BaseModel] | None, Any]:
    """Return the model holding the last key of *loc* and that key's field (or None)."""
    model: Any = Schema
    skip = False
    for depth, part in enumerate(loc):
        if isinstance(part, int) or skip:
            skip = False
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None, None
        info = model.model_fields.get(part)
        if depth == len(loc) - 1 or info is None:
            return model, info
        model, skip = _inner_model(info.annotation)
    return None, None


def _inner_model(annotation: Any) -> tuple[Any, bool]:
    """Return the model *annotation* holds (through lists, dicts, optionals); True for a dict."""
    for arg in (annotation, *get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg, False
        origin = get_origin(arg)
        if origin in (list, dict):
            inner = get_args(arg)[-1]
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner, origin is dict
    return None, False


def problems_of(error: ValidationError) -> list[Problem]:
    """Return one plain :class:`Problem` per pydantic error, with the fix and a hint."""
    problems = []
    for item in error.errors(include_url=False):
        loc = [p for p in item["loc"] if isinstance(p, str | int)]
        kind = item["type"]
        value = item.get("input", NO_VALUE)
        model, info = _target(loc)
        default = None if info is None or info.is_required() else info.default
        if default is PydanticUndefined:  # a table's default_factory: no one-line example
            default = None
        if kind == "extra_forbidden":
            known = sorted(model.model_fields) if model is not None else []
            message = "unknown key"
            if isinstance(value, Mapping):  # a whole [table]: its keys are not worth printing
                message, value = "unknown table", NO_VALUE
            close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
            if close:
                message += f'; did you mean "{close[0]}"?'
            if known:
                message += f" (known here: {', '.join(known)})"
        elif kind == "missing":
            value = NO_VALUE
            message = "is required; add it"
        elif kind in _KIND:
            message = _KIND[kind]
            if default not in (None, [], {}) and not isinstance(default, BaseModel):
                message += f", e.g. {loc[-1]} = {_toml_value(default)}"
        elif kind == "value_error":
            message = str(item["msg"]).removeprefix("Value error, ")
        elif kind == "literal_error":
            expected = str(item.get("ctx", {}).get("expected", "")).replace("'", "")
            message = f"use one of {expected}"
        elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
            ctx = item.get("ctx", {})
            bound = {"greater_than_equal": ">= {ge}", "less_than_equal": "<= {le}",
                     "greater_than": "> {gt}", "less_than": "< {lt}"}[kind].format(**ctx)  # fmt: skip
            message = f"out of range: must be {bound}"
            if default is not None and not isinstance(default, BaseModel):
                message += f" (default {_toml_value(default)})"
        elif kind in ("too_short", "string_too_short"):
            message = str(item["msg"]).replace("String", "text").replace("List", "list")
            message = message.replace("should", "must")
        else:
            message = str(item["msg"])
        problems.append(Problem(_join(loc), value, message))
    return problems


# -- the effective configuration --------------------------------------------------------------

REDACTED: Final = "<redacted>"

#: Keys whose values are secrets: `config show` prints them as REDACTED.
SECRETS: Final = (("transfer", "keys", "*"), ("mail", "password"), ("webhooks", "*", "secret"),
                  ("feeds", "api_keys", "*"))  # fmt: skip


def effective_table(schema: Schema) -> dict[str, Any]:
    """Return the checked file with every default filled in, secrets redacted, nulls dropped."""
    table = _drop_none(schema.model_dump(mode="python"))
    for secret in SECRETS:
        _redact(table, secret)
    return table  # type: ignore[no-any-return]  # a dict: model_dump of a model


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _redact(node: Any, path: tuple[str, ...]) -> None:
    head, rest = path[0], path[1:]
    children: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        children = [(k, node[k]) for k in (node if head == "*" else [head]) if k in node]
    elif isinstance(node, list) and head == "*":
        children = list(enumerate(node))
    for key, child in children:
        if rest:
            _redact(child, rest)
        elif child not in ("", None):
            node[key] = REDACTED


def to_toml(table: Mapping[str, Any]) -> str:
    """Return *table* as TOML text (scalars first, then tables, then arrays of tables)."""
    lines: list[str] = []
    _emit(lines, [], table)
    return "\n".join(lines).lstrip("\n") + "\n"


def _is_table(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value)


def _is_array_of_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _emit(lines: list[str], path: list[str], table: Mapping[str, Any]) -> None:
    for key, value in table.items():
        if not _is_table(value) and not _is_array_of_tables(value):
            lines.append(f"{_key(str(key))} = {_toml_value(value)}")
    for key, value in table.items():
        name = [*path, _key(str(key))]
        if _is_table(value):
            if any(not _is_table(v) and not _is_array_of_tables(v) for v in value.values()):
                lines += ["", f"[{'.'.join(name)}]"]  # a table of tables needs no own header
            _emit(lines, name, value)
        elif _is_array_of_tables(value):
            for item in value:
                lines += ["", f"[[{'.'.join(name)}]]"]
                _emit(lines, name, item)


# -- the reference in docs/configuration.md ---------------------------------------------------

_CHECKS: Final = {
    "_duration": "duration",
    "_positive_duration": "duration > 0",
    "_ttl": "TTL: 0 to 2147483647 s",
    "_hostport": "HOST:PORT",
    "_any_port": "HOST:PORT (port 0: any)",
    "_listen_or_off": 'HOST:PORT or ""',
    "_cidr": "CIDR",
    "_ip_or_endpoint": "IP[:PORT]",
    "_name": "name",
    "_secret": "text, 16+ characters",
    "_size": 'bytes or "10MB"',
    "check": "duration or word",
}
_PLAIN: Final = {bool: "boolean", int: "integer", float: "number", str: "text"}


def _describe(annotation: Any, metadata: Sequence[Any] = ()) -> str:
    """Return a short human type of a field: ``integer >= 1``, ``list of CIDR``, ``duration``."""
    bounds = []
    # An optional field (``Count | None``) keeps its bounds in a Field() nested in the
    # Annotated type: pydantic lifts only a top-level Field's constraints into metadata.
    metadata = [
        m for item in metadata for m in (item.metadata if isinstance(item, FieldInfo) else [item])
    ]
    for item in metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if getattr(item, attr, None) is not None:
                bounds.append(f"{sign} {getattr(item, attr)}")
        func = getattr(item, "func", None)
        if func is not None:
            return _CHECKS.get(func.__name__, "checked text")
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _describe(args[0], [*args[1:], *metadata])
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"list of {_describe(args[0])}"
    if origin is dict:
        return f"table of {_describe(args[1])}"
    if args and type(None) in args:
        return " or ".join(_describe(a) for a in args if a is not type(None))
    if args:
        return " or ".join(_describe(a) for a in args)
    if annotation is Any:
        return "any"
    base = _PLAIN.get(annotation, getattr(annotation, "__name__", str(annotation)))
    return f"{base} {' and '.join(bounds)}".strip()


def _rows(model: type[BaseModel], prefix: str) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    for name, info in model.model_fields.items():
        inner, is_dict = _inner_model(info.annotation)
        list_of = get_origin(info.annotation) is list or any(
            get_origin(a) is list for a in get_args(info.annotation)
        )
        if inner is not None:
            sub = (
                f"{prefix}{name}.NAME."
                if is_dict
                else f"{prefix}{name}[]."
                if list_of
                else f"{prefix}{name}."
            )
            rows += _rows(inner, sub)
            continue
        if info.is_required():
            default = "required"
        elif info.default is None:
            default = "unset"
        else:
            default = f"`{_toml_value(info.default)}`"
        rows.append((f"`{prefix}{name}`", _describe(info.annotation, info.metadata), default))
    return rows


def reference_markdown() -> str:
    """Return the generated key reference of docs/configuration.md (one row per key)."""
    lines = [
        "| key | type | default |",
        "|---|---|---|",
        *(f"| {k} | {t} | {d} |".replace(" || ", " \\|\\| ") for k, t, d in _rows(Schema, "")),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m reputable.config_report > reference (docs/configuration.md)
    print(reference_markdown(), end="")
