"""Installs the kill points of MODELWATCH_TEST_KILL at interpreter start (see killpoints.py)."""

import os

if os.environ.get("MODELWATCH_TEST_KILL"):
    import killpoints

    killpoints.install(os.environ["MODELWATCH_TEST_KILL"])
