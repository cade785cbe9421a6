"""What ``request.auth`` holds for every authenticated v2 request.

Kept free of DRF imports: the authentication classes import it while DRF loads its settings.
"""

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class OrgAccess:
    """Who is calling, for which organization, in which role (``request.auth``)."""

    org_id: uuid.UUID
    role: str
    user_id: uuid.UUID
    via: str  # "jwt" or "api_key"
    is_platform_staff: bool = False  # a sys_admin acting in an org they are not a member of
    api_key_id: int | None = None
