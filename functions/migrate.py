"""The migrations custom resource: apply pending migrations on every deploy that changes SQL.

Called by the CDK ``custom_resources.Provider`` framework with CloudFormation's
``RequestType``. Create and Update migrate; Delete does nothing (tearing the stack down
never touches the data). Runs by hand from the Lambda console too, with the test event
``{"RequestType": "Update"}``: the way to migrate after filling in a stack-created secret.
"""

from __future__ import annotations

import os
from typing import Any

from shared.db import get_connection
from shared.errors import ConfigError
from shared.migrations import migrate
from shared.observability import logger

PHYSICAL_ID = "schema-migrations"


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = event.get("RequestType", "Update")
    physical_id = event.get("PhysicalResourceId", PHYSICAL_ID)
    if request == "Delete":
        logger.info("stack deleted: migrations left in place")
        return {"PhysicalResourceId": physical_id}
    try:
        applied = migrate(get_connection())
    except ConfigError as exc:
        # The stack created the secret on this very deploy: nobody could fill it in yet.
        # Let the deploy finish; the operator fills the secret and runs this function once.
        if os.environ.get("DATABASE_SECRET_CREATED_BY_STACK") != "true":
            raise
        logger.warning("database secret not filled in yet: migrations not applied", extra={"error": str(exc)})
        return {"PhysicalResourceId": physical_id, "Data": {"Applied": "0", "Status": "secret-not-filled-in"}}
    logger.info("migrations applied", extra={"applied": applied})
    return {"PhysicalResourceId": physical_id, "Data": {"Applied": str(len(applied)), "Status": "migrated"}}
