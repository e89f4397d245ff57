"""Shared request dependencies: the DB session, settings, clock, cipher and the acting user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.common.clock import Clock
from app.common.crypto import FieldCipher
from app.config import Settings
from app.db import get_db

DbSession = Annotated[AsyncSession, Depends(get_db, scope="function")]


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_cipher(request: Request) -> FieldCipher:
    cipher: FieldCipher = request.app.state.cipher
    return cipher


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
ClockDep = Annotated[Clock, Depends(get_clock)]
CipherDep = Annotated[FieldCipher, Depends(get_cipher)]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None
