"""Request and response shapes for login, the current user and invitations."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(Strict):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=256)


class LoginResponse(BaseModel):
    status: str = Field(
        description="'ok', or 'mfa_required' / 'mfa_setup_required' when a second step is owed"
    )
    csrf_token: str
    role: str


class TwoFactorCode(Strict):
    code: str = Field(min_length=6, max_length=8)


class TwoFactorSetup(BaseModel):
    secret: str
    otpauth_uri: str


class InvitationAccept(Strict):
    password: str = Field(min_length=1, max_length=256)


class PasswordChange(Strict):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class MeRead(BaseModel):
    id: int
    email: str
    full_name: str
    role: str
    clinic_id: int
    two_factor_enabled: bool
    csrf_token: str
    enrollment_id: int | None = None
