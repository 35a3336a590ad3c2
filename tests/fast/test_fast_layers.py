"""Which package may import which (read from the source, so imports inside functions count too)."""

import ast
import pathlib

import tljh_daemon

DAEMON = pathlib.Path(tljh_daemon.__file__).parent


def imported_modules(path):
    """Absolute names of every module `path` imports (relative imports resolved)."""
    package = ".".join(path.relative_to(DAEMON.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module) if part)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def importers(prefix, of):
    return sorted(str(path.relative_to(DAEMON.parent)) for path in DAEMON.rglob("*.py")
                  if str(path.relative_to(DAEMON.parent)).startswith(prefix)
                  and any(name == of or name.startswith(of + ".") for name in imported_modules(path)))


def test_the_daemon_never_imports_its_installer():
    assert importers("tljh_daemon", "tljh_installer") == []


def test_api_and_handlers_do_not_import_each_other():
    assert importers("tljh_daemon/api", "tljh_daemon.handlers") == []
    assert importers("tljh_daemon/handlers", "tljh_daemon.api") == []


def test_the_checker_sees_relative_imports():
    """A check that could not see `from ..handlers import x` would pass for the wrong reason."""
    assert "tljh_daemon.handlers.pages" in imported_modules(DAEMON / "app.py")
    assert "tljh_daemon.hub" in imported_modules(DAEMON / "api" / "base.py")
