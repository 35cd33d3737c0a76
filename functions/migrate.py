"""The migrations custom resource: Create and Update migrate, Delete does nothing; with
``-c pgCronCutover=true`` it also backs the cutover resource (Create cuts over, Delete undoes).
It never reports success without migrating, except while the stack-created secret still holds
its placeholder. Explained in docs/deploy.md, "First deploy".
"""

from __future__ import annotations

import os
from typing import Any

from shared import cutover
from shared.config import read_secret
from shared.db import get_connection
from shared.migrations import migrate
from shared.naming import SECRET_PLACEHOLDER
from shared.observability import logger

PHYSICAL_ID = "schema-migrations"
CUTOVER_ACTION = "pg-cron-cutover"  # cdk.migrations.CUTOVER_ACTION


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = event.get("RequestType", "Update")
    physical_id = event.get("PhysicalResourceId", PHYSICAL_ID)
    if (event.get("ResourceProperties") or {}).get("Action") == CUTOVER_ACTION:
        return _pg_cron_cutover(request, event.get("PhysicalResourceId", "pg-cron-cutover"))
    if request == "Delete":
        logger.info("stack deleted: migrations left in place")
        return {"PhysicalResourceId": physical_id}
    if _secret_not_filled_in():
        logger.warning("database secret not filled in yet: migrations not applied")
        return {"PhysicalResourceId": physical_id, "Data": {"Applied": "0", "Status": "secret-not-filled-in"}}
    applied = migrate(get_connection())
    logger.info("migrations applied", extra={"applied": applied})
    return {"PhysicalResourceId": physical_id, "Data": {"Applied": str(len(applied)), "Status": "migrated"}}


def _pg_cron_cutover(request: str, physical_id: str) -> dict[str, Any]:
    """Create/Update: cut over from pg_cron; Delete: undo it (pg_cron schedules the jobs again)."""
    result = (cutover.undo if request == "Delete" else cutover.cut_over)(get_connection())
    logger.info(result.message, extra={"jobs": [j.get("registry_job") for j in result.jobs]})
    return {"PhysicalResourceId": physical_id, "Data": {"Jobs": str(len(result.jobs)), "Status": result.action}}


def _secret_not_filled_in() -> bool:
    """True only for the stack-created secret holding exactly its placeholder (read failures raise)."""
    arn = os.environ.get("DATABASE_SECRET_ARN")
    if os.environ.get("DATABASE_SECRET_CREATED_BY_STACK") != "true" or os.environ.get("DATABASE_URL") or not arn:
        return False
    return read_secret(arn) == SECRET_PLACEHOLDER
