"""data.md rule 1: no code in the skrmt package may download anything.

The scan walks the syntax tree of every module, so only code counts: names, attributes,
imports and subprocess command lines. Docstrings, comments and error messages that mention
``fetch_*`` or ``apt-get install`` are text, not calls, and do not trip it.
"""

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "skrmt"

FORBIDDEN_NAMES = {"urlopen", "urlretrieve"}
FORBIDDEN_MODULES = {"requests", "pooch", "urllib.request", "urllib3", "httpx", "http.client",
                     "aiohttp", "wget"}
FORBIDDEN_PROGRAMS = {"pip", "pip3", "apt", "apt-get", "curl", "wget", "conda", "mamba"}
_SUBPROCESS_FUNCS = {"run", "Popen", "call", "check_call", "check_output", "system", "popen"}


def _bad_name(name):
    return name.lstrip("_").startswith("fetch_") or name in FORBIDDEN_NAMES


def _bad_module(module):
    return any(module == m or module.startswith(m + ".") for m in FORBIDDEN_MODULES)


def _program_of(arg):
    """First word of a subprocess command given as a literal list/tuple or string."""
    if isinstance(arg, (ast.List, ast.Tuple)) and arg.elts:
        first = arg.elts[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
        # [sys.executable, "-m", "pip", ...]
        if (isinstance(first, ast.Attribute) and first.attr == "executable"
                and len(arg.elts) >= 3 and isinstance(arg.elts[2], ast.Constant)):
            return str(arg.elts[2].value)
        return None
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.split():
        return arg.value.split()[0]
    return None


def scan_source(source, filename="<string>"):
    """Return ``[(line, description)]`` for every network-capable construct in ``source``."""
    tree = ast.parse(source, filename=filename)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and _bad_name(node.id):
            hits.append((node.lineno, f"name {node.id}"))
        elif isinstance(node, ast.Attribute):
            if _bad_name(node.attr):
                hits.append((node.lineno, f"attribute .{node.attr}"))
            if isinstance(node.value, ast.Name) and node.value.id == "requests":
                hits.append((node.lineno, f"requests.{node.attr}"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _bad_module(alias.name):
                    hits.append((node.lineno, f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 0 and _bad_module(module):
                hits.append((node.lineno, f"from {module} import"))
            for alias in node.names:
                if _bad_name(alias.name) or (node.level == 0
                                            and _bad_module(f"{module}.{alias.name}")):
                    hits.append((node.lineno, f"from {module} import {alias.name}"))
        elif isinstance(node, ast.Call):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if fname in _SUBPROCESS_FUNCS and node.args:
                program = _program_of(node.args[0])
                if program is not None and Path(program).name in FORBIDDEN_PROGRAMS:
                    hits.append((node.lineno, f"{fname}({program} ...)"))
    return hits


def _package_files():
    return sorted(PACKAGE_DIR.rglob("*.py"))


def test_package_found():
    files = _package_files()
    names = {f.relative_to(PACKAGE_DIR).as_posix() for f in files}
    assert "datasets/_fashion_mnist.py" in names
    assert "datasets/_base.py" in names


def test_no_network_calls_in_package():
    problems = []
    for path in _package_files():
        source = path.read_text(encoding="utf-8")
        for line, what in scan_source(source, str(path)):
            problems.append(f"{path.relative_to(PACKAGE_DIR.parent)}:{line}: {what}")
    assert not problems, "forbidden network access:\n" + "\n".join(problems)


# The scanner itself must find real offenders and ignore text.


@pytest.mark.parametrize(
    "source",
    [
        "from sklearn.datasets import fetch_openml\n",
        "import sklearn.datasets\nX = sklearn.datasets.fetch_covtype()\n",
        "from urllib.request import urlopen\n",
        "import urllib.request\nurllib.request.urlretrieve('u', 'f')\n",
        "import urllib\nurllib.request.urlopen('u')\n",
        "import requests\n",
        "r = requests.get('http://example.org')\n",
        "import pooch\n",
        "from urllib import request\n",
        "import subprocess\nsubprocess.run(['pip', 'install', 'rdata'])\n",
        "import subprocess, sys\n"
        "subprocess.check_call([sys.executable, '-m', 'pip', 'install', 'x'])\n",
        "import os\nos.system('apt-get install -y dataset-fashion-mnist')\n",
        "f = getattr(mod, 'x')\nf.fetch_lfw_people()\n",
    ],
)
def test_scanner_flags_offenders(source):
    assert scan_source(source), source


def test_scanner_ignores_text():
    source = '''
"""We never call fetch_openml, urlopen, urlretrieve or requests.get here."""
# sklearn's fetch_covtype downloads: forbidden (see data.md rule 1)
MESSAGE = "install with `apt-get install dataset-fashion-mnist`, not requests.get"


def prefetch_rows(x):
    """Not a download: the name only contains 'fetch_' after a prefix."""
    import subprocess
    subprocess.run(["dpkg", "-L", "dataset-fashion-mnist"])
    return x
'''
    assert scan_source(source) == []
