"""Program catalogue API."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from app.accounts.dependencies import AnyUser
from app.common.errors import NotFound
from app.programs.catalogue import PROGRAMS

router = APIRouter(tags=["programs"])


class ProgramSummary(BaseModel):
    slug: str
    title: str


@router.get("/programs", response_model=list[ProgramSummary])
async def list_programs(principal: AnyUser) -> list[ProgramSummary]:
    """The nine programs, in the order the clinic's enrollment form shows them."""
    return [ProgramSummary(slug=s, title=t) for s, t in PROGRAMS.items()]


@router.get(
    "/programs/{slug}",
    response_model=ProgramSummary,
    responses={404: {"description": "Unknown program"}},
)
async def get_program(slug: str, principal: AnyUser) -> ProgramSummary:
    """One program by its slug."""
    if slug not in PROGRAMS:
        raise NotFound(f"There is no program called '{slug}'.")
    return ProgramSummary(slug=slug, title=PROGRAMS[slug])
