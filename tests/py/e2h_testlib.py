"""Where the Python tests find the e2h package and libe2h.so: $E2H_LIB, else $BUILD/libe2h.so
(tests/run_tests.sh sets BUILD), else build/libe2h.so. Importing this module skips the importing
test module, with the reason, when that library is not built."""
import os
import sys

import pytest

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "python"))
if "E2H_LIB" not in os.environ:
    _b = os.environ.get("BUILD", "build")
    os.environ["E2H_LIB"] = os.path.join(_b if os.path.isabs(_b) else os.path.join(REPO, _b), "libe2h.so")
if not os.path.exists(os.environ["E2H_LIB"]):
    pytest.skip(f"libe2h.so not built ({os.environ['E2H_LIB']}); run make", allow_module_level=True)
