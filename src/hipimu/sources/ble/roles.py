"""Which sensor board is worn where: sensor references and the remembered mapping.

A clinician names a board by what is printed on its label or shown by
``hipimu scan``: its 16-hex-digit device id, the last 4 hex digits (the
``hipimu-xxxx`` name it advertises), or its Bluetooth address.
:class:`SensorRef` parses any of these and tells whether a scanned board
matches.

The mapping device id -> role is remembered in the user's config file
(``$HIPIMU_CONFIG_DIR/sensors.json``, default
``$XDG_CONFIG_HOME/hipimu/sensors.json`` i.e. ``~/.config/hipimu/sensors.json``)::

    {"format": "hipimu-sensors", "version": 1,
     "roles": {"pelvis": "3f2a9c01d4e5b677", "thigh_right": "...", "thigh_left": "..."},
     "addresses": {"3f2a9c01d4e5b677": "C2:11:22:33:44:55"}}

Explicit ``--pelvis/--thigh-right/--thigh-left`` options win over the file.
The file is written atomically (a crash never leaves half a file).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from hipimu.core.conventions import ROLES
from hipimu.core.protocol import DEVICE_NAME_PREFIX
from hipimu.errors import InputError

__all__ = ["SensorRef", "config_path", "load_roles", "save_roles", "resolve_roles"]

_FORMAT = "hipimu-sensors"
_ADDRESS = re.compile(r"(?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}")


@dataclass(frozen=True)
class SensorRef:
    """A user's reference to one board: ``kind`` is ``id`` (16 hex digits),
    ``suffix`` (last 4 hex digits, as in the advertised name) or ``address``."""

    kind: str
    value: str

    @classmethod
    def parse(cls, text: str) -> "SensorRef":
        t = text.strip()
        if t.lower().startswith(DEVICE_NAME_PREFIX):
            t = t[len(DEVICE_NAME_PREFIX):]
        if re.fullmatch(r"[0-9A-Fa-f]{16}", t):
            return cls("id", t.lower())
        if re.fullmatch(r"[0-9A-Fa-f]{4}", t):
            return cls("suffix", t.lower())
        if _ADDRESS.fullmatch(t):
            return cls("address", t.upper())
        raise InputError(
            f"{text!r} is not a sensor: give its device id (16 hex digits), the 4 hex digits on its label "
            f"(hipimu-xxxx) or its Bluetooth address"
        )

    @property
    def suffix(self) -> str | None:
        """The 4 hex digits the board advertises in its name, if known."""
        if self.kind == "id":
            return self.value[-4:]
        return self.value if self.kind == "suffix" else None

    def matches_advert(self, address: str, name: str | None) -> bool:
        """Could the board advertising ``name`` at ``address`` be this one?
        (A full id is confirmed after connecting, from the config.)"""
        if self.kind == "address":
            return address.upper() == self.value
        return bool(name) and name.lower() == DEVICE_NAME_PREFIX + (self.suffix or "")

    def matches_id(self, device_id: str) -> bool:
        return self.kind != "id" or device_id.lower() == self.value

    def __str__(self) -> str:
        return self.value


def config_path() -> Path:
    """The remembered-mapping file (see the module doc)."""
    base = os.environ.get("HIPIMU_CONFIG_DIR")
    if base:
        return Path(base) / "sensors.json"
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "hipimu" / "sensors.json"


def load_roles(path: Path | None = None) -> dict[str, str]:
    """role -> device id remembered in the config file ({} when there is none)."""
    path = path or config_path()
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != _FORMAT:
            raise ValueError("not a hipimu sensors file")
        roles = {str(k): str(v).lower() for k, v in (doc.get("roles") or {}).items()}
    except (OSError, ValueError, AttributeError) as exc:
        raise InputError(f"{path}: unreadable sensor config ({exc}); fix or delete it") from exc
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise InputError(f"{path}: unknown roles {', '.join(unknown)} (known: {', '.join(ROLES)})")
    return roles


def save_roles(roles: dict[str, str], path: Path | None = None) -> Path:
    """Remember role -> device id (replacing the previous mapping); atomic."""
    path = path or config_path()
    for r, dev in roles.items():
        if r not in ROLES:
            raise InputError(f"unknown role {r!r} (known: {', '.join(ROLES)})")
        if SensorRef.parse(dev).kind != "id":
            raise InputError(f"{r}: only full device ids (16 hex digits) are remembered, got {dev!r}")
    if len(set(roles.values())) != len(roles):
        raise InputError("one sensor cannot be worn in two places")
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"format": _FORMAT, "version": 1, "roles": {r: roles[r] for r in ROLES if r in roles}}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def resolve_roles(explicit: dict[str, str | None], *, remembered: dict[str, str] | None = None) -> dict[str, SensorRef]:
    """role -> SensorRef: explicit references (None = not given) over the
    remembered mapping. Raises InputError when nothing is assigned or one
    board is given two roles."""
    remembered = load_roles() if remembered is None else remembered
    out: dict[str, SensorRef] = {}
    if any(v for v in explicit.values()):
        out = {r: SensorRef.parse(v) for r, v in explicit.items() if v}
    else:
        out = {r: SensorRef.parse(v) for r, v in remembered.items()}
    if not out:
        raise InputError(
            "no sensors assigned: give --pelvis ID --thigh-right ID --thigh-left ID, or run "
            "'hipimu assign' once (it remembers them)"
        )
    refs = [(ref.kind, ref.value) for ref in out.values()]
    if len(set(refs)) != len(refs):
        raise InputError("one sensor cannot be worn in two places")
    return {r: out[r] for r in ROLES if r in out}
