"""Which notice an event gives (functions/notification/notices.py): every event the catalog sends to a notification
handler has its case, so a new event subscribed without one fails here, not in a retry loop at run time."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from local.samples import sample_data
from notification import notices
from shopstream import catalog
from shopstream.events import model_of
from shopstream.inbound import PoisonRecord

NOTIFICATION = catalog.service("notification")
CUSTOMER_HANDLERS = [h for h in NOTIFICATION.handlers if h.topic in notices.CUSTOMER_NOTICES]
SUBSCRIBED = sorted({(h.name, e.name, e.version) for h in NOTIFICATION.handlers for e in catalog.EVENTS
                     if e.name in h.event_types and e.topic == h.topic})
# What changes a contact and sends nothing (notification.logic.on_user_event).
WITHOUT_NOTICE = {"UserDeactivated", "UserErased"}


def _data(name: str, version: str) -> BaseModel:
    return model_of(catalog.event(name, version)).model_validate(sample_data(name, version))


def test_every_handler_of_the_service_has_its_notices():
    assert {h.topic for h in NOTIFICATION.handlers} == {*notices.CUSTOMER_NOTICES, "analytics-events"}
    assert len(CUSTOMER_HANDLERS) == len(NOTIFICATION.handlers) - 1


@pytest.mark.parametrize(("handler", "name", "version"), SUBSCRIBED, ids=lambda v: str(v))
def test_every_subscribed_event_gives_its_notice(handler, name, version):
    spec = catalog.event(name, version)
    data = _data(name, version)
    notice: notices.Notice | None
    if handler == "alert-notices":
        notice = notices.alert_notice(data)
    else:
        notice = notices.customer_notice(spec.topic, data)
    if name in WITHOUT_NOTICE:
        assert notice is None
        return
    assert notice is not None and notice.template and notice.subject
    fields = data.model_dump()
    if handler == "alert-notices":  # what the alert is about
        assert notice.reference == (fields.get("user_id") or fields.get("product_id") or "payments")
    else:  # the order or the cart the message names (none for a profile's)
        assert notice.reference == (fields.get("order_id") or fields.get("cart_id") or "")


def test_templates_are_distinct_and_only_cart_reminders_are_marketing():
    given = [notices.customer_notice(catalog.event(n, v).topic, _data(n, v)) if h != "alert-notices"
             else notices.alert_notice(_data(n, v)) for h, n, v in SUBSCRIBED]
    kept = {(n.template, n.subject, n.marketing) for n in given if n is not None}
    assert len({t for t, _, _ in kept}) == len(kept)
    assert {t for t, _, marketing in kept if marketing} == {"cart-reminder"}


def test_an_event_without_a_notice_is_a_poison_record_not_a_retry():
    created = _data("OrderCreated", "v2")  # on order-events, but no notice of order-notices
    with pytest.raises(PoisonRecord, match="no notice for OrderCreatedV2"):
        notices.customer_notice("order-events", created)
    with pytest.raises(PoisonRecord, match="no customer notices for inventory-events"):
        notices.customer_notice("inventory-events", _data("InventoryAdjusted", "v1"))
    with pytest.raises(PoisonRecord):
        notices.alert_notice(created)
