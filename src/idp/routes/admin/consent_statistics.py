"""Admin API: aggregate consent figures for the brand (issue 16 item 8), counts only."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from idp.routes.admin.common import Reader, new_router
from idp.services.consent import statistics
from idp.web.deps import CtxDep

router = new_router()

Count = Annotated[int | None, Field(description="How many customers; null: from 1 to "
                                                "min_count - 1, suppressed")]


class CurrentCell(BaseModel):
    client_id: str
    purpose_id: str
    version: int = Field(description="The version of the purpose's wording")
    granted: Count = Field(description="Customers who agree to it with this app now")
    declined: Count = Field(description="Customers who declined it with this app (and were "
                                        "not asked again)")


class PeriodCell(BaseModel):
    period: date = Field(description="The period's first day (UTC)")
    client_id: str
    purpose_id: str
    version: int
    granted: Count = Field(description="Agreed in the period (a raised version agreed "
                                       "again counts for the new version)")
    declined: Count = Field(description="Said no on the consent page in the period")
    withdrew: Count = Field(description="Stopped it, or disconnected the app, in the period")


class PrivacyCounts(BaseModel):
    do_not_sell_or_share: Count
    limit_sensitive_use: Count


class ConsentStatistics(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "bucket": "month", "since": "2026-01-01", "until": "2026-06-30", "min_count": 5,
        "suppression": statistics.SUPPRESSION.format(k=5, k_minus_1=4),
        "current": [{"client_id": "Zt1q0bS8ZyWm2xR4aV7c9g", "purpose_id": "marketing_email",
                     "version": 3, "granted": 1240, "declined": 310}],
        "over_time": [{"period": "2026-05-01", "client_id": "Zt1q0bS8ZyWm2xR4aV7c9g",
                       "purpose_id": "marketing_email", "version": 3, "granted": 96,
                       "declined": 21, "withdrew": None}],
        "privacy_choices": {"do_not_sell_or_share": 87, "limit_sensitive_use": None}}]})

    bucket: Literal["day", "week", "month"]
    since: date = Field(description="First day counted: the start of its period")
    until: date = Field(description="Last day counted: the end of its period")
    min_count: int = Field(description="k: no count below it is shown "
                                       "(IDP_CONSENT_STATISTICS_MIN_COUNT)")
    suppression: str = Field(description="How small counts are hidden, in words")
    current: list[CurrentCell] = Field(description="Live grants now, per app, purpose and "
                                                   "version")
    over_time: list[PeriodCell] = Field(description="From the consent ledger, per period, "
                                                    "app, purpose and version")
    privacy_choices: PrivacyCounts = Field(description="Accounts with each CCPA/CPRA choice "
                                                       "on, now")


@router.get(
    "/consent/statistics", summary="Aggregate consent figures", response_model=ConsentStatistics,
    description=(
        "How many customers agree to each purpose, at each version, in each app, and how many "
        "granted, declined and withdrew per day, week or month: counts only, never a person. "
        "A count from 1 to k-1 (`min_count`, IDP_CONSENT_STATISTICS_MIN_COUNT, 5 by default) "
        "is null, so no customer can be singled out; periods are whole UTC days, ISO weeks or "
        "calendar months (`since` and `until` widen to them). Ledger entries whose personal "
        "payload was erased with their account are not counted. 400 `invalid_request` for an "
        "unknown bucket, `since` after `until`, or more than 400 periods."))
async def consent_statistics(
        ctx: CtxDep, _: Reader,
        bucket: Annotated[Literal["day", "week", "month"], Query(
            description="The length of each period of `over_time`")] = "month",
        since: Annotated[date | None, Query(
            description="First day (YYYY-MM-DD); default: 31 days, 13 weeks or 12 months "
                        "back")] = None,
        until: Annotated[date | None, Query(
            description="Last day (YYYY-MM-DD); default: today (UTC)")] = None,
        client_id: Annotated[str | None, Query(max_length=64,
                                               description="Only this app")] = None,
        purpose_id: Annotated[str | None, Query(max_length=64,
                                                description="Only this purpose")] = None,
) -> Any:
    return await statistics.consent_statistics(ctx, bucket=bucket, since=since, until=until,
                                               client_id=client_id, purpose_id=purpose_id)
