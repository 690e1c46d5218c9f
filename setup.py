"""cxmon's build. The metadata is in pyproject.toml; this only adds the compiled engine.

With CXMON_COMPILE=1 the modules `monitor/build.py` lists are compiled with mypyc (the same
source, about a sixth less CPU per event). `make install` builds them in place; the image's
builder puts them in the wheel. Without it the build is pure Python.
"""

import os
import runpy

from setuptools import setup

ext_modules = []
if os.environ.get("CXMON_COMPILE") == "1":
    from mypyc.build import mypycify

    build = runpy.run_path("monitor/build.py")
    paths = [build["source"](module) for module in build["COMPILED"]]
    ext_modules = mypycify(paths, group_name="cxmon_engine", multi_file=True)

setup(ext_modules=ext_modules)
