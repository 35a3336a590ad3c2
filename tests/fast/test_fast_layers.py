"""Which package may import which (read from the source, so imports inside functions count too)."""

import ast
import pathlib

import tljh_daemon

DAEMON = pathlib.Path(tljh_daemon.__file__).parent


def imported_modules(path):
    """Absolute names of every module `path` imports (relative imports resolved), type hints' too."""
    package = ".".join(path.relative_to(DAEMON.parent).with_suffix("").parts[:-1])
    return imports_in(path.read_text(), package, type_checking=True)


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


def module_name(path):
    """`tljh_daemon/auth/__init__.py` -> `tljh_daemon.auth`."""
    parts = path.relative_to(DAEMON.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def executed_imports(path):
    """Like imported_modules, but for a package's __init__ relative imports start at the package
    itself, and imports under `if TYPE_CHECKING:` (never run) are left out."""
    name = module_name(path)
    return imports_in(path.read_text(), name if path.name == "__init__.py" else name.rpartition(".")[0])


def imports_in(source, package, type_checking=False):
    """Every module `source` (in `package`) imports, at any level of its code; imports under
    `if TYPE_CHECKING:` only with `type_checking`."""
    tree = ast.parse(source)
    type_only = set() if type_checking else {id(node) for block in ast.walk(tree)
                 if isinstance(block, ast.If) and ast.unparse(block.test).endswith("TYPE_CHECKING")
                 for statement in block.body for node in ast.walk(statement)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module) if part)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def import_graph():
    """{module: the tljh_daemon modules it imports}, module- and function-level imports alike."""
    paths = {module_name(path): path for path in DAEMON.rglob("*.py")}
    return {name: {other for other in executed_imports(path) if other in paths and other != name}
            for name, path in paths.items()}


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle():
    """Config validation, the backends and the web layer import each other in one direction only."""
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert "tljh_daemon.api.base" in import_graph()["tljh_daemon.api.signups"]  # a relative import
    assert "tljh_daemon.hub" in import_graph()["tljh_daemon.handlers.signup"]


def test_function_level_imports_count_and_type_checking_ones_do_not():
    source = ("from typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n    from .servers import Progress\n"
              "def f():\n    from ..hub import HUB\n")
    found = imports_in(source, "tljh_daemon.auth")
    assert "tljh_daemon.hub" in found
    assert "tljh_daemon.auth.servers" not in found
