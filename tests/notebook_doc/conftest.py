"""Fixtures for the notebook_doc tests (helpers live in nbdoc_helpers.py)."""

from __future__ import annotations

import pytest

from notebook_doc import NotebookDoc


@pytest.fixture
def doc() -> NotebookDoc:
    return NotebookDoc.new("notebook-1", actor_id=b"\x01" * 16)
