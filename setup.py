"""Build of the one C extension, ``dlio_core.engine._cread`` (everything else is in pyproject.toml).

The extension is optional: where it cannot be compiled (no C compiler, no Python headers) the
install still succeeds and the engine reads with ``os.open``/``os.preadv``/``os.close`` instead
(``dlio_core.engine.whole_file._cread is None`` when it was not built).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "dlio_core.engine._cread",
            sources=["dlio_core/engine/_cread.c"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter",
                                "-Wno-missing-field-initializers", "-Wno-cast-function-type"],
            optional=True,
        )
    ],
)
