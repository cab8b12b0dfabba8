"""Shared fixtures."""

from pathlib import Path

import pytest

from support import make_tls_files


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A CA and a node certificate it signed (see support.make_tls_files)."""
    return make_tls_files(Path(tmp_path_factory.mktemp("tls")))


@pytest.fixture(scope="session")
def other_tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Another CA and node certificate, which the first CA did not sign."""
    return make_tls_files(Path(tmp_path_factory.mktemp("tls-other")), "other")
