"""Routes of this domain (filled in by the content-delivery work)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
