"""The house rules that imports can check: no import circles, data knows no metric, models know no entry point."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "infogan_pl"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the infogan_pl modules it imports anywhere in its body (function-level imports included)."""
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("infogan_pl"):
                names = [f"{node.module}.{a.name}" for a in node.names]
                targets |= {n for n in names if n in modules} or {node.module}
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("infogan_pl")}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in graph:
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_package_has_no_import_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # the detector finds one
    assert _cycle(import_graph()) is None


def test_data_knows_no_metric_model_or_entry_point():
    graph = import_graph()
    for module, targets in graph.items():
        if module.startswith("infogan_pl.data"):
            allowed = ("infogan_pl.data", "infogan_pl.latent", "infogan_pl.atomic")  # atomic: the write protocol
            bad = {t for t in targets if not t.startswith(allowed)}
            assert not bad, f"{module} imports {bad}"


def test_models_nets_and_losses_do_not_import_entry_points_callbacks_or_metrics():
    graph = import_graph()
    upper = ("infogan_pl.train", "infogan_pl.evaluate", "infogan_pl.report", "infogan_pl.validation",
             "infogan_pl.callbacks", "infogan_pl.metrics", "infogan_pl.bench", "infogan_pl.build")  # fmt: skip
    for module, targets in graph.items():
        if module.startswith(("infogan_pl.models", "infogan_pl.nets", "infogan_pl.losses", "infogan_pl.latent")):
            bad = {t for t in targets if t.startswith(upper)}
            assert not bad, f"{module} imports {bad}"
