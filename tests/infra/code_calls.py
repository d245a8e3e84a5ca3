"""Which AWS APIs (and whether Kafka) a Lambda handler's code can call, read from the code itself.

Static and conservative. From the handler (``module.attribute``) it follows what the code can reach:
module bodies run at import, functions and classes referenced from reachable code, methods whose
name is used as an attribute anywhere reachable (``obj.send(...)`` reaches every reachable class's
``send``), decorated functions (a decorator registers them, e.g. API routes), and imports inside
reachable functions. A call ``<anything>.client("<service>")`` or ``.resource("<service>")`` with a
literal botocore service name is an AWS API the function calls, as is a request signed with
``SigV4Auth(credentials, "<service>", region)`` (X-Ray's OTLP endpoint, shopstream.spans). Third-party
code is not read; the few library entry points that call AWS or open network connections are listed in THIRD_PARTY.

Over-approximation is the safe side: a function may be reported as calling an API it never calls
at run time (every consumer of a service shares its consumers module), never the reverse, as long as
clients are made through a literal service name.

A module in GATED runs only where an environment variable turns it on (shopstream.direct: direct publish). What
code reaches only through it is reported apart (``Calls.gated``), and counts for a function whose environment
sets the variable (``Calls.under``): the brokers for the critical path's committers where cdk.json's
``directPublish`` is on, and for no other function that commits.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = (ROOT / "functions", ROOT / "layers" / "shopstream" / "python")
KAFKA = "kafka-brokers"  # not an AWS API: a TCP connection to the MSK brokers

# Library entry points that reach the network, by (module, name): what they call.
THIRD_PARTY: dict[tuple[str, str], str] = {
    # Powertools idempotency persists records in DynamoDB.
    ("aws_lambda_powertools.utilities.idempotency", "DynamoDBPersistenceLayer"): "dynamodb",
    ("aws_lambda_powertools.utilities.idempotency.persistence.dynamodb", "DynamoDBPersistenceLayer"): "dynamodb",
    # librdkafka clients connect to the brokers.
    ("confluent_kafka", "Producer"): KAFKA,
    ("confluent_kafka", "Consumer"): KAFKA,
    ("confluent_kafka.admin", "AdminClient"): KAFKA,
}
# MSKAuthTokenProvider.generate_auth_token signs locally with the function's credentials: no call.
# Modules imported only where an environment variable is "true" (the code checks the setting first).
GATED: dict[str, str] = {"shopstream.direct": "SHOPSTREAM_DIRECT_PUBLISH"}


@cache
def botocore_services() -> frozenset[str]:
    import botocore.session

    return frozenset(botocore.session.get_session().get_available_services())


@dataclass
class _Module:
    name: str
    path: Path
    tree: ast.Module
    is_package: bool
    defs: dict[str, ast.AST] = field(default_factory=dict)  # top-level functions and classes
    assigned: dict[str, ast.expr] = field(default_factory=dict)  # top-level NAME = value
    bindings: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # name -> (module, attr|None)


def _module_path(name: str) -> tuple[Path, bool] | None:
    parts = name.split(".")
    for root in SOURCE_ROOTS:
        package = root.joinpath(*parts, "__init__.py")
        if package.is_file():
            return package, True
        module = root.joinpath(*parts[:-1], f"{parts[-1]}.py")
        if module.is_file():
            return module, False
    return None


class CodeIndex:
    """Parsed modules of this repository, loaded on demand."""

    def __init__(self) -> None:
        self._modules: dict[str, _Module | None] = {}

    def module(self, name: str) -> _Module | None:
        if name not in self._modules:
            found = _module_path(name)
            self._modules[name] = None if found is None else self._parse(name, *found)
        return self._modules[name]

    def _parse(self, name: str, path: Path, is_package: bool) -> _Module:
        module = _Module(name, path, ast.parse(path.read_text(), str(path)), is_package)
        for statement in module.tree.body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                module.defs[statement.name] = statement
            elif isinstance(statement, ast.Assign):
                for target in statement.targets:
                    if isinstance(target, ast.Name):
                        module.assigned[target.id] = statement.value
        # Import bindings from every scope of the module (a function-local import binds the same way).
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        module.bindings[alias.asname] = (alias.name, None)
                    else:
                        top = alias.name.split(".")[0]
                        module.bindings[top] = (top, None)
            elif isinstance(node, ast.ImportFrom):
                base = self._absolute(module, node)
                for alias in node.names:
                    module.bindings[alias.asname or alias.name] = (base, alias.name)
        return module

    @staticmethod
    def _absolute(module: _Module, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        return ".".join([*package, *([node.module] if node.module else [])])


# Where a client is made from a variable service name on purpose (the cached factory itself).
CLIENT_FACTORIES = frozenset({"shopstream.aws"})


@dataclass(frozen=True)
class Calls:
    aws: frozenset[str]  # botocore service names
    kafka: bool
    unresolved: tuple[str, ...] = ()  # client(...) calls whose service is not a literal: cannot tell
    gated: tuple[tuple[str, Calls], ...] = ()  # (variable, what the code behind that gate adds)

    def under(self, environment: dict[str, str]) -> Calls:
        """What the function calls with this environment: its own calls and those behind every gate it opens."""
        aws, kafka = set(self.aws), self.kafka
        for variable, behind in self.gated:
            if str(environment.get(variable, "")).lower() == "true":
                aws |= behind.aws
                kafka = kafka or behind.kafka
        return Calls(frozenset(aws), kafka, self.unresolved)


class _Walk:
    def __init__(self, index: CodeIndex, open_gates: frozenset[str] = frozenset()) -> None:
        self.index = index
        self.open_gates = open_gates
        self.closed_gates_reached: set[str] = set()
        self.units: list[tuple[_Module, ast.AST]] = []
        self.seen_units: set[int] = set()
        self.loaded: set[str] = set()
        self.classes: list[tuple[_Module, ast.ClassDef]] = []
        self.seen_classes: set[int] = set()
        self.attribute_names: set[str] = set()
        self.aws: set[str] = set()
        self.kafka = False
        self.unresolved: list[str] = []

    # -- reaching things --------------------------------------------------------------------
    def load(self, name: str) -> _Module | None:
        if name in GATED and name not in self.open_gates:
            self.closed_gates_reached.add(name)
            return None
        module = self.index.module(name)
        if module is None:
            return None
        if name not in self.loaded:
            self.loaded.add(name)
            parent = name.rpartition(".")[0]
            if parent:
                self.load(parent)  # importing a.b runs a/__init__.py first
            self.reach_unit(module, module.tree)
        return module

    def reach_unit(self, module: _Module, node: ast.AST) -> None:
        if id(node) not in self.seen_units:
            self.seen_units.add(id(node))
            self.units.append((module, node))

    def reach_class(self, module: _Module, node: ast.ClassDef) -> None:
        if id(node) in self.seen_classes:
            return
        self.seen_classes.add(id(node))
        self.classes.append((module, node))
        for statement in node.body:  # class body runs at definition; dunders other than __call__ may run
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                dunder = statement.name.startswith("__") and statement.name != "__call__"
                if dunder or statement.decorator_list:
                    self.reach_unit(module, statement)
            else:
                self.reach_unit(module, statement)
        for base in node.bases:
            self.reach_expression(module, base)

    def reach_symbol(self, module: _Module, name: str, depth: int = 0) -> None:
        if depth > 20:
            return
        if name in module.defs:
            node = module.defs[name]
            if isinstance(node, ast.ClassDef):
                self.reach_class(module, node)
            else:
                self.reach_unit(module, node)
            return
        if name in module.bindings:
            target, attr = module.bindings[name]
            if attr is None:
                self.load(target)
                return
            submodule = f"{target}.{attr}" if target else attr
            if self.index.module(submodule) is not None:
                self.load(submodule)
                return
            source = self.load(target)
            if source is not None:
                self.reach_symbol(source, attr, depth + 1)
            else:
                self.third_party(target, attr)

    def third_party(self, module: str, name: str) -> None:
        service = THIRD_PARTY.get((module, name))
        if service == KAFKA:
            self.kafka = True
        elif service:
            self.aws.add(service)

    def reach_expression(self, module: _Module, node: ast.AST) -> None:
        for inner in ast.walk(node):
            if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Load):
                self.reach_symbol(module, inner.id)
            elif isinstance(inner, ast.Attribute):
                self.attribute_names.add(inner.attr)
                self.reach_attribute(module, inner)
            elif isinstance(inner, ast.Call):
                self.client_call(module, inner)

    def reach_attribute(self, module: _Module, node: ast.Attribute) -> None:
        """``pkg.mod.name``: resolve through modules the names are bound to."""
        chain = []
        current: ast.AST = node
        while isinstance(current, ast.Attribute):
            chain.append(current.attr)
            current = current.value
        if not isinstance(current, ast.Name) or current.id not in module.bindings:
            return
        target, attr = module.bindings[current.id]
        dotted = target if attr is None else f"{target}.{attr}"
        for part in reversed(chain):
            if self.index.module(dotted) is not None:
                loaded = self.load(dotted)
                if self.index.module(f"{dotted}.{part}") is None and loaded is not None:
                    self.reach_symbol(loaded, part)
                    return
                dotted = f"{dotted}.{part}"
            else:
                self.third_party(dotted, part)
                return

    def client_call(self, module: _Module, call: ast.Call) -> None:
        function = call.func
        name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
        if name == "SigV4Auth" and len(call.args) > 1:
            # A request signed for a service outside a client (OTLP spans to X-Ray, shopstream.spans) calls it.
            signed = call.args[1]
            if isinstance(signed, ast.Constant) and signed.value in botocore_services():
                self.aws.add(signed.value)
            return
        if name not in ("client", "resource") or not call.args:
            return
        first = call.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            if first.value in botocore_services():
                self.aws.add(first.value)
        elif module.name not in CLIENT_FACTORIES:
            self.unresolved.append(f"{module.name}:{call.lineno}")

    # -- the fixed point ----------------------------------------------------------------------
    def run(self) -> None:
        done = 0
        methods_checked: set[tuple[int, str]] = set()
        while True:
            while done < len(self.units):
                module, node = self.units[done]
                done += 1
                self._walk_unit(module, node)
            if not self._reach_called_methods(methods_checked) and done == len(self.units):
                return

    def _walk_unit(self, module: _Module, node: ast.AST) -> None:
        """What one reached unit (a module's top level, a function, a statement) runs."""
        body = node.body if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef)) else [node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for decorator in node.decorator_list:
                self.reach_expression(module, decorator)
        for statement in body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for decorator in statement.decorator_list:
                    self.reach_expression(module, decorator)
                if statement.decorator_list and isinstance(node, ast.Module):
                    self.reach_unit(module, statement)  # registered by its decorator
                elif not isinstance(node, ast.Module):
                    self.reach_unit(module, statement)  # nested function: assume it runs
                continue
            if isinstance(statement, ast.ClassDef):
                if not isinstance(node, ast.Module):
                    self.reach_class(module, statement)
                continue
            for inner in ast.walk(statement):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    self._reach_import(module, inner)
            self.reach_expression(module, statement)

    def _reach_called_methods(self, methods_checked: set[tuple[int, str]]) -> bool:
        """Reach the methods of reached classes whose names were called; whether any was new."""
        grew = False
        for module, cls in list(self.classes):
            for statement in cls.body:
                if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    key = (id(statement), statement.name)
                    if key not in methods_checked and statement.name in self.attribute_names:
                        methods_checked.add(key)
                        self.reach_unit(module, statement)
                        grew = True
        return grew

    def _reach_import(self, module: _Module, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                self.load(alias.name)
        else:
            base = CodeIndex._absolute(module, node)
            for alias in node.names:
                if self.index.module(f"{base}.{alias.name}") is not None:
                    self.load(f"{base}.{alias.name}")
                elif self.load(base) is None:
                    self.third_party(base, alias.name)


def calls_of(handler: str, index: CodeIndex | None = None) -> Calls | None:
    """What the Lambda handler ``package.module.attribute`` calls; None if it is not code of this repo."""
    index = index or CodeIndex()
    walk = _walk(handler, index, frozenset())
    if walk is None:
        return None
    gated = []
    for gate in sorted(walk.closed_gates_reached):
        opened = _walk(handler, index, frozenset({gate}))
        assert opened is not None
        gated.append((GATED[gate], Calls(frozenset(opened.aws - walk.aws), opened.kafka and not walk.kafka)))
    return Calls(frozenset(walk.aws), walk.kafka, tuple(sorted(set(walk.unresolved))), tuple(gated))


def _walk(handler: str, index: CodeIndex, open_gates: frozenset[str]) -> _Walk | None:
    module_name, _, attribute = handler.rpartition(".")
    walk = _Walk(index, open_gates)
    module = walk.load(module_name)
    if module is None:
        return None
    entry = module.defs.get(attribute)
    if isinstance(entry, (ast.FunctionDef, ast.AsyncFunctionDef)):
        walk.reach_unit(module, entry)
    elif attribute in module.assigned:
        # An object: Lambda calls it, so its class's __call__ runs (a bound method is reached by name).
        _reach_call_method(walk, module, module.assigned[attribute])
    else:
        # Made dynamically (``globals()[name] = Consumer(...)``): one of the objects the module creates.
        for node in module.tree.body:
            if isinstance(node, ast.Assign):
                _reach_call_method(walk, module, node.value)
            elif isinstance(node, ast.For):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Assign):
                        _reach_call_method(walk, module, inner.value)
    walk.run()
    return walk


def _class_of(index: CodeIndex, module: _Module, expression: ast.expr, depth: int = 0):
    """The class a call expression instantiates, if it is one of this repository's classes."""
    if depth > 20 or not isinstance(expression, ast.Call):
        return None
    function = expression.func
    name: str | None
    scope: _Module | None
    if isinstance(function, ast.Name):
        name, scope = function.id, module
    elif isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name) \
            and module.bindings.get(function.value.id, ("", ""))[1] is None:
        scope = index.module(module.bindings[function.value.id][0])
        name = function.attr
    else:
        return None
    while scope is not None and depth <= 20:
        depth += 1
        if isinstance(scope.defs.get(name), ast.ClassDef):
            return scope, scope.defs[name]
        if name not in scope.bindings:
            return None
        target, attr = scope.bindings[name]
        scope, name = index.module(target), attr
        if name is None:
            return None
    return None


def _reach_call_method(walk: _Walk, module: _Module, value: ast.expr) -> None:
    walk.reach_expression(module, value)
    found = _class_of(walk.index, module, value)
    while found is not None:
        owner, cls = found
        walk.reach_class(owner, cls)
        call = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__call__"), None)
        if call is not None:
            walk.reach_unit(owner, call)
            return
        bases = [b for b in cls.bases if isinstance(b, ast.Name)]
        found = _class_of(walk.index, owner, ast.Call(func=bases[0], args=[], keywords=[])) if bases else None
