"""The loaded content library, parsed once per process and shared by every request."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import Request

from app.content.loader import ContentLibrary, load_library


@lru_cache(maxsize=4)
def get_library(root: Path, overlay: Path | None = None) -> ContentLibrary:
    """Parse and validate modules/ once; a broken content tree stops start-up with its problems."""
    return load_library(root, overlay)


def library_of(request: Request) -> ContentLibrary:
    library: ContentLibrary = request.app.state.library
    return library
