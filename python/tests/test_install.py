"""Installation: `cmake --install` puts liblathe.so beside liblathe.a, names it in lathe.pc
and the CMake package, and it exports only the lathe_* API; the Python package it installs
finds that library; `pip install ./python` works
offline (Debian's pip + setuptools, --no-build-isolation) and the installed package finds
the installed library through pkg-config."""

import os
import re
import shutil
import subprocess
import sys

import lathe
from conftest import LATHE_BIN, ROOT

# the public API: every function declared in the installed headers (lathe.h, train.h)
API_HEADERS = ("lathe.h", "train.h")


def _declared_api():
    names = set()
    for h in API_HEADERS:
        text = open(os.path.join(ROOT, "include", "lathe", h)).read()
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        names |= set(re.findall(r"\b(lathe_\w+)\s*\(", text))
    return names


def _run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert p.returncode == 0, f"{' '.join(map(str, cmd))}:\n{p.stdout}\n{p.stderr}"
    return p.stdout


def test_shared_library_exports_only_the_api():
    out = _run(["nm", "-D", "--defined-only", lathe.library_path()])
    exported = {line.split()[-1] for line in out.splitlines() if line.strip()}
    api = _declared_api()
    assert "lathe_compile_file" in api and "lathe_fit" in api, api
    assert exported == api, (exported - api, api - exported)


def test_cmake_install_and_pip_install_offline(tmp):
    build = os.path.dirname(os.path.realpath(LATHE_BIN))
    prefix = tmp / "prefix"
    _run(["cmake", "--install", build, "--prefix", prefix])
    libdir = prefix / "lib"
    assert (libdir / "liblathe.a").is_file() and (libdir / "liblathe.so").exists()
    targets = (libdir / "cmake" / "lathe" / "latheTargets.cmake").read_text()
    assert "lathe::liblathe_shared" in targets and "lathe::liblathe" in targets
    # the package cmake --install copied finds the library of its prefix by itself
    pydirs = list((libdir).glob("python3*/dist-packages/lathe/__init__.py"))
    assert len(pydirs) == 1, "cmake --install did not install the Python package"
    bare = {k: v for k, v in os.environ.items()
            if k not in ("LATHE_LIBRARY", "PYTHONPATH", "PKG_CONFIG_PATH")}
    out = _run([sys.executable, "-c", "import lathe; print(lathe.library_path())"],
               env=dict(bare, PYTHONPATH=str(pydirs[0].parent.parent)), cwd=tmp)
    assert os.path.realpath(out.strip()) == os.path.realpath(libdir / "liblathe.so")
    env = dict(os.environ, PKG_CONFIG_PATH=str(libdir / "pkgconfig"))
    env.pop("LATHE_LIBRARY", None)
    env.pop("PYTHONPATH", None)
    so = _run(["pkg-config", "--variable=shared_library", "lathe"], env=env).strip()
    assert os.path.realpath(so) == os.path.realpath(libdir / "liblathe.so")
    src = tmp / "src"
    shutil.copytree(os.path.join(ROOT, "python"), src,
                    ignore=shutil.ignore_patterns("tests", "__pycache__", "build", "*.egg-info"))
    site = tmp / "site"
    _run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-index",
          "--no-deps", "--no-cache-dir", "--disable-pip-version-check", "--target", site, src],
         env=env)
    code = ("import lathe, numpy as np\n"
            "m = lathe.compile('model t(x: f32[3]) {\\n  output y = x * 2.0\\n}\\n')\n"
            "print(lathe.library_path(), lathe.__file__, m(x=np.ones(3, np.float32)).tolist())")
    out = _run([sys.executable, "-c", code], env=dict(env, PYTHONPATH=str(site)), cwd=tmp)
    lib, pkg, result = out.split(" ", 2)
    assert os.path.realpath(lib) == os.path.realpath(libdir / "liblathe.so")
    assert pkg.startswith(str(site)) and result.strip() == "[2.0, 2.0, 2.0]"
