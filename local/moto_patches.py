"""Narrow patches to moto, applied by everything local that runs moto.

1. TransactWriteItems without copying whole tables.

moto 5.2.5 deep-copies every table a transaction touches before applying it, so it can put the
copies back if an action fails: the cost of one transaction grows with everything the tables
hold (and rolling back replaces a table's stream shard, stranding stream iterators). This
version checks every condition first and applies nothing unless all hold, as DynamoDB does;
for the rare failure while applying (a value DynamoDB refuses), it restores only the items the
transaction touched and the stream records it added. Same results, same errors, constant cost.

2. A shortcut in moto's response serializer. For every member of every structure it answers, moto
tries a list of key aliases on the result object; for a plain dict that holds the member's own
name and none of the aliases tried before it (the shape's name), the answer is that entry, which
is what DynamoDB's results (dicts in wire form, deeply nested attribute values) always are. The
shortcut returns it directly and leaves every other case to moto.

3. DynamoDB and DynamoDB Streams results written as JSON directly. Their results are already in
wire form (plain dicts of attribute values), so moto's shape-driven serializer, the largest single
cost of the local runtime (a quarter of its CPU in a profile of the sustained benchmark), only
copies them member by member. Whatever is not a plain dict of JSON values (a datetime becomes
epoch seconds, bytes base64, as the serializer writes them), a paginated result, an error or a
service with response transformers still goes through moto's serializer.
``FAST_JSON_RESULTS`` turns it off (tests/unit/test_moto_patches.py compares both ways).

4. Update expressions parsed once per distinct text. moto parses a request's UpdateExpression two
or three times (the request handler looks for its names and values, the backend validates it),
and the services send a handful of distinct texts (values travel separately). The parsed tree
depends only on the text and is only read (the validator works on a copy), so parses are cached.

5. The names of a response class's methods listed once per class. moto lists them (inspect.getmembers
over a hundred methods) on every request, to see whether the action has a method: about 0.1 ms of a
DynamoDB call of ~1 ms in the seeded simulation. The list depends only on the class.

6. One stream record for an update that creates its item. moto stores the bare key first (an INSERT
record holding only the key) and then records the update (a second INSERT), where DynamoDB writes one
INSERT with the new image. The relays skip both (neither is an outbox item), but how many records a poll
reads then depended on whether a write was the first to its item: for the audit service's analytics
windows, on whether the seeded simulation's events crossed a minute of the wall clock, so a seed's trace
did not always replay.

7. TransactWriteItems honours ClientRequestToken, as DynamoDB does: a repeat of a request with the same token
within 10 minutes succeeds without writing again; the same token with other parameters is refused
(IdempotentParameterMismatchException). moto ignores the token, so a commit whose answer was lost and that is
sent again (shopstream.transaction) would meet its own writes and fail their conditions.

8. A Query reads its partition, not the whole table sorted. moto's Table.query starts from all_items(), every
item of the table sorted by key, then keeps the ones of the asked key and sorts those again: each Query cost
O(n log n) in the table's items, under the one request at a time of the local server. The saga's timeout sweep
(17 index queries a minute) then grew with every order until it held the server for seconds (bench section 5,
2026-12-05). A query on the table now starts from its key's items; one on an index from the items unsorted
(its results are sorted after, by every key attribute, so the order is the same).

9. An item's attributes sized once as it is built. moto's item dict checks the 400 KB limit on every attribute
set by summing the sizes of all the attributes set before it, so building an item cost O(n²) in its attributes
(2% of the local runtime's CPU in a profile of the closed loop). Building one now keeps a running total: the same
check at each attribute, the same error at the same attribute.

10. An update expression's checks that depend on its text alone made once. moto's validator walks the tree ten
times per UpdateItem; three walks (the action counts, overlapping paths, a key attribute updated) depend only on
the expression, its attribute names and the table's key attributes, and raise or change nothing. Once they
pass for that combination, they are not walked again (the other seven, which read the values and the item, are).

11. The validator's own copy of the parsed tree made structurally. It deep-copies the tree (patch 4 shares one per
text) before resolving it; ``copy.deepcopy`` over its nodes and parent links was a third of an UpdateItem in
moto. The copy now rebuilds the same nodes, children and parent links directly, and deep-copies anything else.

12. A condition expression parsed once per text, names and values. moto parses a write's ConditionExpression twice (the
request handler to check the names and values it uses, the backend to evaluate it), and the services send a few distinct
texts, most of them with the same values each time (``attribute_not_exists(pk)``): 7% of the local runtime's CPU in a
profile of the closed loop. The tree is only read once parsed (its operands look attributes up in the item they are
given), so parses are kept, keyed by all three, each made from a copy of its values of its own (moto keeps a value's
list in the tree, and an item SET from the same request holds that list and grows it in place on ADD); what cannot be
a key (bytes among the values) is parsed each time.

13. The routes of a service's URLs built once. For every request, moto's in-process stub asks the service's backend
for its URL patterns, which formats and copies them (and for S3 reloads its ``urls`` module from disk), then compiles
each pattern it tries. The patterns depend only on the backend's class and two settings read from the environment
(``MOTO_S3_CUSTOM_ENDPOINTS``, ``MOTO_ENABLE_ISO_REGIONS``), so they are kept compiled under those.

All upstream-worthy; kept here, pinned to the version they were written against.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import json
import os
import re
import threading
import time
from collections import Counter
from datetime import datetime
from typing import Any

from botocore import xform_name

# moto's modules are imported inside the functions that use them: apply() checks moto's version before any is
# looked up, so that a moto these patches were not written for is refused with the pin's message, not an ImportError
# of a name that moved (process_request imports where moto 5.2.5's own copy of it does).

PATCHED_VERSION = "5.2.5"
_applied = False
FAST_JSON_RESULTS = True
written_directly: Counter[str] = Counter()  # results that took the direct path, by operation (tests)
_FAST_JSON_SERVICES = frozenset({"dynamodb", "dynamodbstreams"})


def apply() -> None:
    """Install the patch once (idempotent). Refuses a moto it was not written for."""
    global _applied
    if _applied:
        return
    import moto
    from moto.dynamodb.models import DynamoDBBackend

    if moto.__version__ != PATCHED_VERSION:
        raise RuntimeError(f"local/moto_patches.py was written for moto {PATCHED_VERSION}, "
                           f"not {moto.__version__}: check the patch still applies, then update the pin")
    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    _shortcut_dict_members()
    _write_json_results_directly()
    _parse_update_expressions_once()
    _list_action_methods_once()
    _one_record_for_a_creating_update()
    _honour_client_request_tokens()
    _query_reads_its_partition()
    _size_items_once()
    _check_update_expressions_once()
    _copy_parsed_trees_directly()
    _parse_condition_expressions_once()
    _route_urls_once()
    _applied = True


CONDITIONS_KEPT = 4096  # distinct (text, names, values) parses kept; all are dropped when full
condition_parses: dict[tuple[str, str, str], tuple[Any, list[str], list[str]]] = {}  # patch 12's
url_routes: dict[tuple[type, str | None, str | None], list[tuple[Any, Any]]] = {}  # patch 13's


def _parse_condition_expressions_once() -> None:
    from moto.dynamodb.comparisons import ConditionExpressionParser

    general = ConditionExpressionParser.parse
    kept = condition_parses

    def parse(self: Any) -> Any:
        try:
            key = (self.condition_expression, json.dumps(self.expression_attribute_names, sort_keys=True),
                   json.dumps(self.expression_attribute_values, sort_keys=True))
        except TypeError:  # bytes among the values: no key, parsed as moto does
            return general(self)
        found = kept.get(key)
        if found is None:
            values, self.expression_attribute_values = self.expression_attribute_values, json.loads(key[2])
            try:  # the tree keeps lists of the values it was parsed with: these are its own, nobody else's
                op = general(self)  # raises for an invalid expression: nothing is kept
            finally:
                self.expression_attribute_values = values
            found = (op, list(self.expr_attr_names_found), list(self.expr_attr_values_found))
            if len(kept) >= CONDITIONS_KEPT:
                kept.clear()
            kept[key] = found
        else:
            self.expr_attr_names_found.extend(found[1])
            self.expr_attr_values_found.extend(found[2])
        return found[0]

    ConditionExpressionParser.parse = parse  # type: ignore[method-assign]


def _route_urls_once() -> None:
    import moto.backend_index as backend_index
    from moto.core import botocore_stubber
    from moto.core.base_backend import BackendDict
    from moto.core.config import passthrough_service, passthrough_url, service_whitelisted
    from moto.core.exceptions import ServiceNotWhitelisted
    from moto.core.request import normalize_request
    from moto.core.utils import get_equivalent_url_in_aws_domain

    routes = url_routes

    def routes_of(backend: Any) -> list[tuple[Any, Any]]:
        key = (type(backend), os.environ.get("MOTO_S3_CUSTOM_ENDPOINTS"), os.environ.get("MOTO_ENABLE_ISO_REGIONS"))
        found = routes.get(key)
        if found is None:
            found = routes[key] = [(re.compile(url), handler) for url, handler in backend.urls.items()]
        return found

    # moto 5.2.5's BotocoreStubber.process_request, with backend.urls and their patterns from routes_of
    def process_request(self: Any, request: Any) -> Any:
        parsed_url, _ = get_equivalent_url_in_aws_domain(request.url)
        clean_url = f"{parsed_url.scheme}://{parsed_url.netloc}{parsed_url.path}"
        if passthrough_url(clean_url):
            return None
        for service, pattern in backend_index.backend_url_patterns:
            if pattern.match(clean_url):
                if passthrough_service(service):
                    return None
                if not service_whitelisted(service):
                    raise ServiceNotWhitelisted(service)
                import moto.backends as backends
                from moto.core import DEFAULT_ACCOUNT_ID
                from moto.core.exceptions import HTTPException

                backend_dict = backends.get_backend(service)  # type: ignore[call-overload]
                if isinstance(backend_dict, BackendDict):
                    if "us-east-1" in backend_dict[DEFAULT_ACCOUNT_ID]:
                        backend = backend_dict[DEFAULT_ACCOUNT_ID]["us-east-1"]
                    else:
                        backend = backend_dict[DEFAULT_ACCOUNT_ID]["aws"]
                else:
                    backend = backend_dict["global"]
                for url, method_to_execute in routes_of(backend):
                    if url.match(clean_url):
                        from moto.moto_api import recorder

                        normalized_request = normalize_request(request)
                        try:
                            recorder._record_request(normalized_request)
                            status, headers, body = method_to_execute(
                                normalized_request, normalized_request.raw_url, normalized_request.headers)
                        except HTTPException as e:
                            status, headers, body = e.code, e.get_headers(), e.get_body()
                        return status, headers, body
        if re.compile(r"https?://.+\.amazonaws.com/.*").match(clean_url):
            return 404, {}, "Not yet implemented"
        return None

    botocore_stubber.BotocoreStubber.process_request = process_request  # type: ignore[method-assign]


def _size_items_once() -> None:
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    def build(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key, self.range_key = hash_key, range_key
        built, size = LimitedSizeDict(), 0
        for key, value in attrs.items():
            typed = DynamoType(value)
            size += bytesize(key) + typed.size()
            if size > 405000:  # LimitedSizeDict's limit, checked as each attribute is added
                raise ItemSizeTooLarge
            dict.__setitem__(built, key, typed)
        self.attrs = built

    Item.__init__ = build  # type: ignore[method-assign]


def _check_update_expressions_once() -> None:
    from moto.dynamodb.parsing.validators import (
        ActionCountValidator,
        OverlappingPathsValidator,
        UpdateExpressionValidator,
        UpdateHashRangeKeyValidator,
    )

    text_only = (ActionCountValidator, OverlappingPathsValidator, UpdateHashRangeKeyValidator)
    general_init, general_validate = UpdateExpressionValidator.__init__, UpdateExpressionValidator.validate

    def start(self: Any, expression: Any, *args: Any, **kwargs: Any) -> None:
        self.parsed_tree = expression  # the shared tree (patch 4): where the combinations that passed are noted
        general_init(self, expression, *args, **kwargs)

    def validate(self: Any) -> Any:
        passed = self.parsed_tree.__dict__.setdefault("_shopstream_checked", set())
        try:
            combination = (tuple(sorted((self.expression_attribute_names or {}).items())),
                           tuple(self.table.table_key_attrs))
            hash(combination)
        except (AttributeError, TypeError):  # names no client would send (raw HTTP): moto's own walk, and its error
            return general_validate(self)
        if combination in passed:
            self.processors = [p for p in self.processors if not isinstance(p, text_only)]
            return general_validate(self)
        node = general_validate(self)  # an error leaves the combination unnoted: the next request raises it too
        passed.add(combination)
        return node

    UpdateExpressionValidator.__init__ = start  # type: ignore[method-assign]
    UpdateExpressionValidator.validate = validate  # type: ignore[method-assign]


def _copy_parsed_trees_directly() -> None:
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.ast_nodes import Node  # type: ignore[attr-defined]

    def copied(node: Any, parent: Any, memo: dict[int, Any]) -> Any:
        made = object.__new__(type(node))
        state = {}
        for name, value in node.__dict__.items():
            if name == "parent":
                state[name] = parent
            elif name == "children" and value is not None:
                state[name] = [copied(child, made, memo) if isinstance(child, Node) else copy.deepcopy(child, memo)
                               for child in value]
            elif name != "_shopstream_checked":
                state[name] = copy.deepcopy(value, memo)
        made.__dict__.update(state)
        return made

    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        if isinstance(value, Node) and value.parent is None:  # a whole tree, as the validator copies
            return copied(value, None, {} if memo is None else memo)
        return copy.deepcopy(value, memo)

    validators.deepcopy = deepcopy  # type: ignore[assignment]  # the name moto's validators module calls


def _query_reads_its_partition() -> None:
    from moto.dynamodb.models.table import Table

    querying = threading.local()  # per thread: in-process moto may serve several threads at once
    general_query, general_all_items = Table.query, Table.all_items

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        querying.bucket = (self, None if index_name else hash_key)
        try:
            return general_query(self, hash_key, *args, **kwargs)
        finally:
            querying.bucket = None

    def all_items(self: Any) -> Any:
        bucket = getattr(querying, "bucket", None)
        if bucket is None or bucket[0] is not self:
            return general_all_items(self)
        if bucket[1] is None:  # an index: every item, unsorted
            return [item for hashed in self.items.values()
                    for item in (hashed.values() if self.range_key_attr else [hashed])]
        hashed = self.items.get(bucket[1])
        if hashed is None:
            return []
        return list(hashed.values()) if self.range_key_attr else [hashed]

    Table.query, Table.all_items = query, all_items  # type: ignore[method-assign]


# "A client request token is valid for 10 minutes after the first request that uses it is completed"
# (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
CLIENT_TOKEN_SECONDS = 600


def _honour_client_request_tokens() -> None:
    from moto.core.responses import ActionResult
    from moto.dynamodb.exceptions import DynamodbException
    from moto.dynamodb.responses import DynamoHandler

    class IdempotentParameterMismatch(DynamodbException):
        def __init__(self) -> None:
            super().__init__("com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
                             "The request uses the same client token as a previous, but non-identical request.")

    general = DynamoHandler.transact_write_items

    def transact_write_items(self: Any) -> Any:
        token = self.body.get("ClientRequestToken")
        if not token:
            return general(self)
        seen: dict[str, tuple[str, float]] = self.dynamodb_backend.__dict__.setdefault("_client_tokens", {})
        digest = hashlib.sha256(json.dumps(self.body["TransactItems"], sort_keys=True, default=_wire_value).encode()
                                ).hexdigest()
        now = time.time()
        previous = seen.get(token)
        if previous is not None and now - previous[1] < CLIENT_TOKEN_SECONDS:
            if previous[0] != digest:
                raise IdempotentParameterMismatch()
            return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
        result = general(self)  # raises when refused: a refused request's token is not kept
        while seen and now - next(iter(seen.values()))[1] >= CLIENT_TOKEN_SECONDS:  # oldest first
            del seen[next(iter(seen))]
        seen.pop(token, None)
        seen[token] = (digest, now)
        return result

    DynamoHandler.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _wire_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return round(value.timestamp(), 3)  # what the serializer writes: milliseconds
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(type(value).__name__)


def _write_json_results_directly() -> None:
    from moto import settings
    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoResult

    general = ActionResult.execute_result
    # DynamoResult is DynamoDB's own result (GetItem, UpdateItem, BatchGetItem...): a plain result
    # once built, serialized the same way (it only converts attribute values when constructed).
    plain_results = (ActionResult, DynamoResult)

    def execute_result(self: Any, context: Any) -> Any:
        result = self._result
        service = context.service_model
        if (FAST_JSON_RESULTS and type(self) in plain_results and type(result) is dict
                and service.service_name in _FAST_JSON_SERVICES and service.protocol == "json"
                and not getattr(context.response, "RESPONSE_KEY_PATH_TO_TRANSFORMER", None)
                and not settings.PRETTIFY_RESPONSES):
            try:
                body = json.dumps(result, default=_wire_value, separators=(",", ":"))
            except (TypeError, ValueError):
                return general(self, context)
            written_directly[context.operation_model.name] += 1
            content_type = f"application/x-amz-json-{service.metadata.get('jsonVersion', '1.0')}"
            return context.operation_model.http.get("responseCode", 200), {"Content-Type": content_type}, body
        return general(self, context)

    ActionResult.execute_result = execute_result  # type: ignore[method-assign]


def _parse_update_expressions_once() -> None:
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

    general = UpdateExpressionParser.make.__func__

    @functools.lru_cache(maxsize=4096)
    def parsed(expression: str) -> Any:
        return general(UpdateExpressionParser, expression)

    def make(cls: Any, expression: str) -> Any:
        return parsed(expression) if cls is UpdateExpressionParser else general(cls, expression)

    UpdateExpressionParser.make = classmethod(make)


def _one_record_for_a_creating_update() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    general = DynamoDBBackend.update_item

    def update_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        table = self.get_table(table_name)
        shard = table.stream_shard
        try:
            creates = shard is not None and self.get_item(table_name, key) is None
        except Exception:  # a key that does not fit the table: moto answers it as it does
            creates = False
        if not creates:
            return general(self, table_name, key, *args, **kwargs)
        table.stream_shard = None  # neither the bare key nor the update is recorded ...
        try:
            item = general(self, table_name, key, *args, **kwargs)
        finally:
            table.stream_shard = shard
        shard.add(None, item)  # ... but the item, once, as DynamoDB records it
        return item

    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign]


def _list_action_methods_once() -> None:
    from moto.core import responses, utils

    responses.method_names_from_class = functools.cache(utils.method_names_from_class)


def _shortcut_dict_members() -> None:
    from moto.core.serialize import AttributePicker

    general = AttributePicker.__call__

    def pick(self: Any, context: Any) -> Any:
        obj, key = context.obj, context.key
        if type(obj) is dict and key in obj and not self.response_transformers and "." not in key:
            shape_name = getattr(context.shape, "name", None)
            if shape_name is None or (shape_name not in obj and xform_name(shape_name) not in obj):
                return obj[key]
        return general(self, context)

    AttributePicker.__call__ = pick  # type: ignore[method-assign]


def _key_of(table: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return op["Key"]
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.exceptions import TooManyTransactionsException

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    plan = _checked_plan(self, transact_items)  # every check, nothing written
    touched, stream_lengths = _snapshot(self, plan)  # what this transaction touches, to put back
    _apply(self, plan, touched, stream_lengths)


Plan = list[tuple[str, dict[str, Any], dict[str, Any]]]  # (operation, its request, the item's key)


def _checked_plan(self: Any, transact_items: list[dict[str, Any]]) -> Plan:
    """Every operation checked (one per item, its condition), nothing written: TransactionCanceledException with
    every operation's reason if any fails."""
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    seen: set[tuple[str, str]] = set()
    errors: list[tuple[Any, Any, Any]] = []
    plan: Plan = []
    for item in transact_items:
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        failed: dict[str, Any] = {}  # the item as it stands, where a failed condition asks for it
        try:
            op_type, op = next(iter(item.items()))
            plan.append((op_type, op, _checked_operation(self, op_type, op, seen, failed)))
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), failed.get("item")))
        except Exception as e:
            errors.append((type(e).__name__, str(e), failed.get("item")))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)
    return plan


def _checked_operation(self: Any, op_type: str, op: dict[str, Any], seen: set[tuple[str, str]],
                       failed: dict[str, Any]) -> dict[str, Any]:
    """The key of one operation, once its condition holds (ConditionalCheckFailed, with the item in ``failed``
    where ALL_OLD asks for it)."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import ConditionalCheckFailed, MultipleTransactionsException

    if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
        raise ValueError("Unsupported transaction operation")
    table_name = op["TableName"]
    table = self.get_table(table_name)
    key = _key_of(table, op_type, op)
    unique = (str(table_name), str(dict(sorted(key.items()))))
    if unique in seen:
        raise MultipleTransactionsException()
    seen.add(unique)
    current = self.get_item(table_name, key)
    condition = op.get("ConditionExpression")
    if condition is not None:
        condition_op = get_filter_expression(condition, op.get("ExpressionAttributeNames"),
                                             op.get("ExpressionAttributeValues"))
        if not condition_op.expr(current):
            if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                failed["item"] = current.to_json()["Attributes"]
            raise ConditionalCheckFailed(item=failed.get("item"))
    return key


def _snapshot(self: Any, plan: Plan) -> tuple[list[tuple[Any, Any, Any, Any]], dict[str, int]]:
    """The items the plan writes as they are now, and each touched table's stream length."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    touched: list[tuple[Any, Any, Any, Any]] = []
    stream_lengths: dict[str, int] = {}
    for op_type, op, key in plan:
        if op_type == "ConditionCheck":
            continue
        table = self.get_table(op["TableName"])
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr is not None else None
        before = table.get_item(hash_value, range_value)
        # An update changes the stored item in place: keep a copy. A put stores a new item and a
        # delete drops it, so the one there now is what to put back.
        touched.append((table, hash_value, range_value, copy.deepcopy(before) if op_type == "Update" else before))
        if table.stream_shard is not None:
            stream_lengths.setdefault(table.name, len(table.stream_shard.items))
    return touched, stream_lengths


def _apply(self: Any, plan: Plan, touched: list[tuple[Any, Any, Any, Any]], stream_lengths: dict[str, int]) -> None:
    """Write the plan; on any error put back what it touched (all or nothing)."""
    from moto.dynamodb.exceptions import (
        MockValidationException,
        MultipleTransactionsException,
        TransactionCanceledException,
    )

    for index, (op_type, op, key) in enumerate(plan):
        names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        try:
            if op_type == "Put":
                self.put_item(op["TableName"], op["Item"], expression_attribute_names=names,
                              expression_attribute_values=values)
            elif op_type == "Delete":
                self.delete_item(op["TableName"], key, expression_attribute_names=names,
                                 expression_attribute_values=values)
            elif op_type == "Update":
                self.update_item(op["TableName"], key, update_expression=op["UpdateExpression"],
                                 expression_attribute_names=names, expression_attribute_values=values)
        except Exception as error:
            _restore(touched, stream_lengths)
            if isinstance(error, (MultipleTransactionsException, MockValidationException)):
                raise
            failures: list[tuple[Any, Any, Any]] = [(None, None, None)] * len(plan)
            failures[index] = (type(error).__name__, str(error), None)
            raise TransactionCanceledException(failures) from error


def _restore(touched: list[tuple[Any, Any, Any, Any]], stream_lengths: dict[str, int]) -> None:
    """Put back the items a failed transaction touched, then drop the stream records it added."""
    for table, hash_value, range_value, before in reversed(touched):
        if before is None:
            table.delete_item(hash_value, range_value)
        elif range_value is not None:
            table.items[hash_value][range_value] = before
        else:
            table.items[hash_value] = before
    for table, *_ in touched:
        if table.stream_shard is not None and table.name in stream_lengths:
            del table.stream_shard.items[stream_lengths[table.name]:]
