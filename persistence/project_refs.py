"""Which project an external id routes to, and the ids a deal's project gets: the lookups the webhook
inbox needs, apart from the billing of ``persistence.projects`` (which amends projects through change
orders, whose approvals queue inbox events: routing must not import that)."""

from __future__ import annotations

import uuid

from sqlalchemy import Uuid, bindparam, select, text
from sqlalchemy.orm import Session

from persistence.models import Project, ProjectRef

PROJECT_NAMESPACE = uuid.UUID("5f0c2d7e-3b1a-4c8e-9a6d-2e4f8b1c7a90")


def project_id_for_deal(provider: str, deal_id: str) -> uuid.UUID:
    """A won deal that no project knows becomes this project: redeliveries converge on one id."""
    return uuid.uuid5(PROJECT_NAMESPACE, f"deal:{provider}:{deal_id}")


_PROJECT_EXISTS = text(f"SELECT 1 FROM {Project.__tablename__} WHERE id = :id").bindparams(
    bindparam("id", type_=Uuid)
)


def project_exists(session: Session, project_id: uuid.UUID) -> bool:
    """One indexed lookup, for routing a webhook: loading the project with its milestones and refs was
    30 % of the receiver's time under load."""
    return session.execute(_PROJECT_EXISTS, {"id": project_id}).first() is not None


def resolve(session: Session, system: str, ref: str) -> ProjectRef | None:
    return session.scalars(
        select(ProjectRef).where(ProjectRef.system == system, ProjectRef.ref == ref.strip())
    ).first()
