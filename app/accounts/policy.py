"""The single authorisation point: who may call which route, and which rows they may see.

Every route must carry exactly one :class:`Guard` (via ``Depends``). A route without one
is refused at runtime (default deny) and fails the route-matrix test.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy import Select, bindparam

from app.accounts.models import Role
from app.common.errors import NotAuthenticated, PermissionDenied

K = TypeVar("K")


class AuthState(enum.StrEnum):
    """How far a session has got through login."""

    FULL = "full"
    MFA_PENDING = "mfa_pending"  # password ok, TOTP code still owed
    MFA_SETUP = "mfa_setup"  # staff who must enrol a second factor before anything else


@dataclass(frozen=True)
class CrisisContacts:
    emergency_number: str
    crisis_line_name: str
    crisis_line_number: str | None

    @staticmethod
    def dial(number: str) -> str:
        """A ``tel:`` target: digits and a leading plus only, so every phone can dial it."""
        return "".join(ch for ch in number if ch.isdigit() or ch == "+")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, their session, and for patients their patient row."""

    user_id: int
    role: Role
    clinic_id: int
    email: str
    full_name: str
    session_id: int
    csrf_token: str
    auth_state: AuthState
    patient_id: int | None = None
    # For patients: the clinic's crisis contacts, shown on every page they see.
    crisis: CrisisContacts | None = None
    # For therapists: colleagues whose patients they cover right now (an absence handover).
    covering_for: frozenset[int] = frozenset()
    # Zone names, read with the session: the clinic's, and for patients their own (the
    # clock their pages follow, falling back to the clinic's).
    clinic_timezone: str | None = None
    own_timezone: str | None = None
    # The clinic's language: pages fall back to it when the browser asks for none of ours.
    clinic_language: str | None = None

    @property
    def first_name(self) -> str:
        return self.full_name.split(" ", 1)[0]

    @property
    def therapist_ids(self) -> frozenset[int]:
        """Whose patients a therapist may see: their own, plus those they cover now."""
        return frozenset({self.user_id}) | self.covering_for


class Access(enum.Enum):
    PUBLIC = "public"
    AUTHENTICATED = "authenticated"
    PATIENT = "patient"
    THERAPIST = "therapist"
    ADMIN = "admin"
    STAFF = "staff"
    # Reachable mid-login: the 2FA step, 2FA enrolment, logout.
    LOGIN_IN_PROGRESS = "login_in_progress"
    # Monitoring with the operator's bearer token; no user session opens it.
    OPERATOR = "operator"


_ROLES: dict[Access, frozenset[Role]] = {
    Access.PATIENT: frozenset({Role.PATIENT}),
    Access.THERAPIST: frozenset({Role.THERAPIST}),
    Access.ADMIN: frozenset({Role.ADMIN}),
    Access.STAFF: frozenset({Role.THERAPIST, Role.ADMIN}),
    Access.AUTHENTICATED: frozenset(Role),
    Access.LOGIN_IN_PROGRESS: frozenset(Role),
    Access.OPERATOR: frozenset(),
}


class Guard:
    """A route's access rule, used as a FastAPI dependency that returns the principal."""

    def __init__(self, access: Access) -> None:
        self.access = access

    def __repr__(self) -> str:
        return f"Guard({self.access.value})"

    async def __call__(self, request: Request) -> Principal | None:
        from app.accounts.dependencies import load_principal

        principal = await load_principal(request)
        request.state.access = self.access
        if self.access is Access.PUBLIC:
            return principal
        if principal is None:
            # Keep the deletion of an expired or revoked session that load_principal found.
            raise NotAuthenticated("Please log in.").keep_writes()
        if (
            principal.auth_state is not AuthState.FULL
            and self.access is not Access.LOGIN_IN_PROGRESS
        ):
            if principal.auth_state is AuthState.MFA_PENDING:
                raise NotAuthenticated(
                    "Enter your two-factor code to finish logging in.", code="mfa_required"
                )
            raise PermissionDenied(
                "Set up two-factor authentication first.", code="mfa_setup_required"
            )
        if principal.role not in _ROLES[self.access]:
            raise PermissionDenied("You do not have access to this page.")
        return principal


class OperatorGuard(Guard):
    """Monitoring endpoints: a bearer token from the settings, compared in constant time.

    With no token configured nobody gets in. A logged-in user without the token gets 403,
    so a clinic account can never be used to read operational data.
    """

    def __init__(self) -> None:
        super().__init__(Access.OPERATOR)

    async def __call__(self, request: Request) -> Principal | None:
        from app.accounts.dependencies import load_principal

        request.state.access = self.access
        configured = request.app.state.settings.metrics_token
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if (
            configured is not None
            and scheme.lower() == "bearer"
            and hmac.compare_digest(
                configured.get_secret_value().encode(), presented.strip().encode()
            )
        ):
            return None
        if await load_principal(request) is not None:
            raise PermissionDenied("Monitoring needs the operator token.")
        raise NotAuthenticated("Send the operator token as a bearer token.")


PUBLIC = Guard(Access.PUBLIC)
AUTHENTICATED = Guard(Access.AUTHENTICATED)
PATIENT = Guard(Access.PATIENT)
THERAPIST = Guard(Access.THERAPIST)
ADMIN = Guard(Access.ADMIN)
STAFF = Guard(Access.STAFF)
LOGIN_IN_PROGRESS = Guard(Access.LOGIN_IN_PROGRESS)
OPERATOR = OperatorGuard()


def _guards(dependant: Dependant) -> Iterable[Guard]:
    for dep in dependant.dependencies:
        if isinstance(dep.call, Guard):
            yield dep.call
        yield from _guards(dep)


@dataclass(frozen=True)
class RouteInfo:
    path: str
    methods: frozenset[str]
    route: APIRoute


def all_api_routes(app: Any) -> list[RouteInfo]:
    """Every FastAPI route with its full path, however routers were nested."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI versions that flatten included routers
        return [
            RouteInfo(r.path, frozenset(r.methods or set()), r)
            for r in app.routes
            if isinstance(r, APIRoute)
        ]
    found = []
    for ctx in iter_route_contexts(app.routes):
        if isinstance(ctx.original_route, APIRoute):
            found.append(
                RouteInfo(str(ctx.path), frozenset(ctx.methods or set()), ctx.original_route)
            )
    return found


def guard_of(route: APIRoute) -> Guard | None:
    """The one guard a route carries; None if unclassified or ambiguous.

    Guards must sit on the route itself (a parameter or ``dependencies=``), not only on
    its router, so the route object seen at request time carries its own rule.
    """
    found = {id(g): g for g in _guards(route.dependant)}
    return next(iter(found.values())) if len(found) == 1 else None


_checked_routes: dict[int, bool] = {}


async def enforce_classified(request: Request) -> None:
    """App-wide dependency: a route that nobody classified answers 403 (default deny)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    ok = _checked_routes.get(id(route))
    if ok is None:
        ok = _checked_routes[id(route)] = guard_of(route) is not None
    if not ok:
        raise PermissionDenied("This route has no access rule.", code="unclassified_route")


# Object-level rules ---------------------------------------------------------------


def can_access_enrollment(principal: Principal, enrollment: Any) -> bool:
    """Admins see their clinic's enrollments, therapists their own patients (and a colleague's
    while covering their absence), patients themselves."""
    if enrollment.clinic_id != principal.clinic_id:
        return False
    if principal.role is Role.ADMIN:
        return True
    if principal.role is Role.THERAPIST:
        return enrollment.therapist_id in principal.therapist_ids
    return principal.patient_id is not None and enrollment.patient_id == principal.patient_id


def scope_enrollments(stmt: Select[Any], principal: Principal, enrollment: Any) -> Select[Any]:
    """Every list of enrollments goes through here, so clinic scoping lives in one place."""
    stmt = stmt.where(enrollment.clinic_id == principal.clinic_id)
    if principal.role is Role.THERAPIST:
        stmt = stmt.where(enrollment.therapist_id.in_(sorted(principal.therapist_ids)))
    elif principal.role is Role.PATIENT:
        stmt = stmt.where(enrollment.patient_id == principal.patient_id)
    return stmt


def scope_enrollments_for(stmt: Select[Any], role: Role, enrollment: Any) -> Select[Any]:
    """:func:`scope_enrollments` with bind parameters in place of the caller's ids.

    Building a statement costs more CPU than sending it, so hot lists build theirs once
    per role (:class:`Prebuilt`) and pass :func:`scope_params` with each execution.
    """
    stmt = stmt.where(enrollment.clinic_id == bindparam("scope_clinic_id"))
    if role is Role.THERAPIST:
        stmt = stmt.where(
            enrollment.therapist_id.in_(bindparam("scope_therapist_ids", expanding=True))
        )
    elif role is Role.PATIENT:
        stmt = stmt.where(enrollment.patient_id == bindparam("scope_patient_id"))
    return stmt


def scope_params(principal: Principal) -> dict[str, Any]:
    """The values for :func:`scope_enrollments_for`'s bind parameters."""
    return {
        "scope_clinic_id": principal.clinic_id,
        "scope_therapist_ids": sorted(principal.therapist_ids),
        "scope_patient_id": principal.patient_id,
    }


class Prebuilt(Generic[K]):
    """A statement built once per key (a role; a role and a filter), when first needed."""

    def __init__(self, build: Callable[[K], Any]) -> None:
        self._build = build
        self._built: dict[K, Any] = {}

    def __getitem__(self, key: K) -> Any:
        stmt = self._built.get(key)
        if stmt is None:
            stmt = self._built[key] = self._build(key)
        return stmt


def can_manage_clinic(principal: Principal, clinic_id: int) -> bool:
    return principal.role is Role.ADMIN and principal.clinic_id == clinic_id
