"""A client's AgentConfigs as one YAML or JSON document, so profiles can live in git.

    client_id: acme
    profiles:
      default:
        system_message: ...
        model: openai:gpt-4o-mini
        temperature: 0.7
        ...

A profile lists the fields of `openbrain.domain.profile.AgentProfile` (snake_case or camelCase); a field
left out takes the built-in default, so the file describes each profile completely. A profile may carry
`version`: then the import goes ahead only if the stored profile still has that version (export writes
it with `include_versions=True`).

Import is all-or-nothing: every profile is validated and compared with what is stored before anything
is written, and the changes are written together (`ProfileStore.save_all`: DynamoDB transactions whose
version conditions make a concurrent edit between the read and the write a `ConflictError` with nothing
written; a transaction holds at most 100 items and 4 MB, so a larger import is written in several, each
atomic).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from openbrain.core.errors import ConflictError, InvalidInputError
from openbrain.domain.profile import AgentProfile
from openbrain.services import profiles as profile_service
from openbrain.storage.orm.agent_config import AgentConfig, validate_profile_name
from openbrain.storage.orm.client import validate_client_id
from openbrain.storage.stores import ProfileStore

Format = Literal["yaml", "json"]
FORMATS: tuple[Format, ...] = ("yaml", "json")
DOCUMENT_KEYS = ("client_id", "profiles")


# --- the document ----------------------------------------------------------------------------------

def profile_fields(profile: AgentProfile) -> dict[str, Any]:
    """The exported fields of one profile, as plain JSON-able values (whole seconds as ints)."""
    fields = profile.model_dump()
    seconds = fields["max_execution_time"]
    fields["max_execution_time"] = int(seconds) if float(seconds).is_integer() else seconds
    return fields


def export_configs(store: ProfileStore, client_id: str, include_versions: bool = False) -> dict[str, Any]:
    """Every stored AgentConfig of `client_id` as `{client_id, profiles: {name: {fields}}}`."""
    validate_client_id(client_id)
    profiles: dict[str, Any] = {}
    for config in store.of_client(client_id):
        fields = profile_fields(config.profile())
        if include_versions:
            fields["version"] = config.version
        profiles[config.profile_name] = fields
    return {"client_id": client_id, "profiles": profiles}


def format_for(path: str | None, requested: str | None = None) -> Format:
    """The format asked for, else `.json` files are JSON and everything else (and stdin/stdout) YAML."""
    if requested is not None:
        if requested not in FORMATS:
            raise InvalidInputError(f"format must be yaml or json, got {requested!r}")
        return requested  # type: ignore[return-value]
    return "json" if path and path.lower().endswith(".json") else "yaml"


def dump_document(document: dict[str, Any], fmt: Format) -> str:
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        # multi-line text (system messages) as literal blocks, so a git diff shows the changed line
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _str)
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def load_document(text: str, fmt: Format, source: str = "the document") -> dict[str, Any]:
    """Parse a document; syntax errors are `InvalidInputError` naming `source` and the place."""
    if fmt == "json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{source} is not valid JSON: {exc}") from exc
    else:
        import yaml

        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or "syntax error"
            raise InvalidInputError(f"{source} is not valid YAML{where}: {problem}") from exc
    if not isinstance(document, dict):
        raise InvalidInputError(f"{source} must be a mapping with client_id and profiles")
    return document


# --- import ----------------------------------------------------------------------------------------

@dataclass
class ImportReport:
    client_id: str
    dry_run: bool
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "dry_run": self.dry_run,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
        }


def _desired(name: Any, fields: Any) -> tuple[AgentProfile, int | None]:
    """The profile the document asks for, validated, and the version it expects (if any)."""
    where = f"profile {name!r}"
    if not isinstance(name, str):
        raise InvalidInputError(f"{where}: profile names must be text")
    if not isinstance(fields, dict):
        raise InvalidInputError(f"{where} must be a mapping of fields")
    values = dict(fields)
    expected = values.pop("version", None)
    if expected is not None and (not isinstance(expected, int) or isinstance(expected, bool) or expected < 1):
        raise InvalidInputError(f"{where}: version must be a whole number of at least 1")
    try:
        validate_profile_name(name)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc.message}") from exc
    return AgentProfile.parse(values, f"{where}: "), expected


def _plan(store: ProfileStore, client_id: str, profiles: dict[Any, Any], report: ImportReport) -> list[AgentConfig]:
    """Validate everything and compare it with what is stored; returns the items to write."""
    desired = {name: _desired(name, fields) for name, fields in profiles.items()}
    stored = {config.profile_name: config for config in store.of_client(client_id)}
    writes: list[AgentConfig] = []
    for name in sorted(desired):
        profile, expected = desired[name]
        current = stored.get(name)
        if current is not None and current.profile() == profile and expected in (None, current.version):
            report.unchanged.append(name)
            continue
        try:
            # load-then-save: the stored item's version travels with the write as its condition
            writes.append(profile_service.prepare(client_id, name, profile, current,
                                                  profile_service.LATEST if expected is None else expected))
        except ConflictError as exc:
            raise ConflictError(f"{exc.message} as the document expects: someone changed it since the export; "
                                "export again and reapply your edits") from exc
        (report.created if current is None else report.updated).append(name)
    return writes


def import_configs(store: ProfileStore, document: dict[str, Any], client_id: str | None = None,
                   dry_run: bool = False) -> ImportReport:
    """Create or update the document's profiles for `client_id` (default: the document's client_id).

    Nothing is written if any profile is invalid or expects a version that is no longer stored. Profiles
    stored but missing from the document are left alone.
    """
    unknown = sorted(set(document) - set(DOCUMENT_KEYS))
    if unknown:
        raise InvalidInputError(f"unknown top-level key(s) {', '.join(map(str, unknown))}; "
                                f"expected {' and '.join(DOCUMENT_KEYS)}")
    target = client_id or document.get("client_id")
    if not isinstance(target, str) or not target:
        raise InvalidInputError("the document has no client_id; pass --client-id")
    validate_client_id(target)
    profiles = document.get("profiles")
    if not isinstance(profiles, dict):
        raise InvalidInputError("profiles must be a mapping of profile name to fields")
    report = ImportReport(client_id=target, dry_run=dry_run)
    writes = _plan(store, target, profiles, report)
    if writes and not dry_run:
        store.save_all(target, writes)
    return report
