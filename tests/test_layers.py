"""The import direction the README's layout promises, checked from the source: routes and the
CLI call services; services call the layers below; nothing below calls back up; the service
rooms import only the rooms before them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.no_database

SRC = Path(__file__).resolve().parents[1] / "src" / "idp"
BELOW_SERVICES = ("protocol", "store", "federation", "crypto", "net", "notifications",
                  "observability", "domain", "errors", "settings")
ABOVE_SERVICES = ("routes", "web", "cli", "main")
ROOMS = ("consent", "profile", "tokens", "upstream", "signin", "accounts")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _modules(part: str) -> list[Path]:
    folder = SRC / part
    return sorted(folder.rglob("*.py")) if folder.is_dir() else [SRC / f"{part}.py"]


def _offenders(parts: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for part in parts:
        for path in _modules(part):
            for name in _imports(path):
                if any(name == f"idp.{f}" or name.startswith(f"idp.{f}.") for f in forbidden):
                    found.append(f"{path.relative_to(SRC)} imports {name}")
    return found


def test_nothing_below_services_imports_services_or_above() -> None:
    assert _offenders(BELOW_SERVICES, ("services", *ABOVE_SERVICES)) == []


def test_services_never_import_routes_pages_or_the_cli() -> None:
    assert _offenders(("services",), ABOVE_SERVICES) == []


@pytest.mark.parametrize("room", ROOMS)
def test_a_service_room_imports_only_rooms_before_it(room: str) -> None:
    later = (*(f"services.{r}" for r in ROOMS[ROOMS.index(room) + 1:]),
             "services.maintenance")
    assert _offenders((f"services/{room}",), later) == []


def test_protocol_rules_are_plain_functions() -> None:
    found = [f"{path.name} imports {name}" for path in _modules("protocol")
             for name in _imports(path)
             if name.split(".")[0] in ("fastapi", "starlette", "sqlalchemy", "httpx")]
    assert found == []
