"""Build hook for the optional compiled DNS packet loop and snapshot build helpers.

All metadata lives in pyproject.toml.

``optional=True``: when no C compiler (or no Python headers) is available the extension is
skipped with a warning and reputable installs as pure Python (worker.py then uses its
Python UDP loop, snapshot/build.py its Python host packing).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "reputable.publication.dnsbl._fastdns",
            sources=["src/reputable/publication/dnsbl/_fastdns.c"],
            extra_compile_args=[
                "-O2",
                "-std=gnu11",
                "-Wall",
                "-Wextra",
                "-Wno-unused-parameter",
                "-Wno-missing-field-initializers",
            ],
            optional=True,
        ),
        Extension(
            "reputable.publication.snapshot._fastbuild",
            sources=["src/reputable/publication/snapshot/_fastbuild.c"],
            extra_compile_args=[
                "-O2",
                "-std=gnu11",
                "-Wall",
                "-Wextra",
                "-Wno-unused-parameter",
                "-Wno-missing-field-initializers",
            ],
            optional=True,
        ),
    ]
)
