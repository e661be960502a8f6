"""Build hook for the optional compiled DNS packet loop and snapshot build helpers.

All metadata lives in pyproject.toml.

``optional=True``: when no C compiler (or no Python headers) is available the extension is
skipped with a warning and reputable installs as pure Python (worker.py then uses its
Python UDP loop, snapshot/build.py its Python host packing).
"""

from setuptools import Extension, setup

_FLAGS = [
    "-O2",
    "-std=gnu11",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-Wno-missing-field-initializers",
]


def _extension(module: str) -> Extension:
    """An optional C extension built from ``src/<module path>.c`` with the project's flags."""
    source = "src/" + module.replace(".", "/") + ".c"
    return Extension(module, sources=[source], extra_compile_args=_FLAGS, optional=True)


setup(
    ext_modules=[
        _extension("reputable.publication.dnsbl._fastdns"),
        _extension("reputable.publication.snapshot._fastbuild"),
    ]
)
