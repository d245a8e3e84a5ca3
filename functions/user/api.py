"""The user service's HTTP API: its routes; ``handler`` is the Lambda entry point."""

from __future__ import annotations

from shopstream.api import PathId, ServiceApi, created
from shopstream.request import caller

from . import logic
from .models import RegisterUser, UpdateUser, UserProfile

service_api = ServiceApi("user", title="user service")
app = service_api.app
handler = service_api.handler


@app.post("/users")
def register_user(body: RegisterUser):
    return created(logic.register(caller(), body))


@app.get("/users/<userId>")
def get_user(userId: PathId) -> UserProfile:
    return logic.get(caller(), userId)


@app.patch("/users/<userId>")
def update_user(userId: PathId, body: UpdateUser) -> UserProfile:
    return logic.update(caller(), userId, body)


@app.post("/users/<userId>/deactivate")
def deactivate_user(userId: PathId) -> UserProfile:
    return logic.deactivate(caller(), userId)


@app.post("/users/<userId>/erasure")
def erase_user(userId: PathId):
    """Erase the customer's personal data (the customer themself or an admin); asking again is a no-op."""
    return created(logic.erase(caller(), userId), status=202)
