"""Finishes a cubechat wheel built by maturin, in place:

- adds ``cubechat/cubechat/cubechat.pyi``, type stubs of the generated module that mypy
  --strict accepts (stubgen's output, then: enum variants typed as subclasses of their enum,
  as they are at run time; record fields typed from their constructor; the ``ChatError``
  variants as exceptions with typed fields; generated internals left out);
- with ``--strip``, strips the library. Bindings must be generated from an unstripped library
  (a stripped one has no UniFFI metadata), so maturin builds unstripped and this strips after.

Usage: python scripts/wheel-finish.py WHEEL [--strip]   (needs mypy and wheel installed)
"""
import ast
import pathlib
import subprocess
import sys
import tempfile

# ChatError's fields are not annotated in the generated code; their types (bindings/src/error.rs).
ERROR_FIELDS = {"reason": "str", "code": "int", "retry_after_ms": "typing.Optional[int]",
                "found": "int", "supported": "int"}


def is_private(node: ast.stmt) -> bool:
    name = getattr(node, "name", None)
    if name is None and isinstance(node, (ast.Assign, ast.AnnAssign)):
        target = node.targets[0] if isinstance(node, ast.Assign) else node.target
        name = getattr(target, "id", None)
    return isinstance(name, str) and name.startswith("_") and not name.startswith("__")


def annotate_fields(cls: ast.ClassDef, error: bool) -> None:
    """``x = ...`` / ``x: Incomplete`` fields typed like the constructor's parameter."""
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"),
                None)
    params = {}
    if init is not None:
        for a in init.args.args + init.args.kwonlyargs:
            if a.arg == "self":
                continue
            if a.annotation is None and error:
                a.annotation = ast.parse(ERROR_FIELDS.get(a.arg, "typing.Any"), mode="eval").body
            if a.annotation is not None:
                params[a.arg] = a.annotation
    body = []
    for n in cls.body:
        name = None
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
            name = n.targets[0].id
        elif isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name):
            name = n.target.id
        if name is not None and name in params:
            body.append(ast.AnnAssign(target=ast.Name(name), annotation=params[name], simple=1))
            continue
        if isinstance(n, ast.FunctionDef) and n.name == "__eq__":
            n.args.args[1].annotation = ast.Name("object")
            n.returns = ast.Name("bool")
        if isinstance(n, ast.FunctionDef) and n.name == "__init__" and n.returns is None:
            n.returns = ast.Constant(None)
        body.append(n)
    cls.body = body or [ast.Expr(ast.Constant(...))]


def annotate_functions(tree: ast.Module) -> None:
    """Every parameter and return annotated (``typing.Any`` where the generated code says
    nothing), so that --strict sees no untyped definition."""
    for f in ast.walk(tree):
        if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for i, a in enumerate(f.args.posonlyargs + f.args.args + f.args.kwonlyargs):
            if a.annotation is None and not (i == 0 and a.arg in ("self", "cls")):
                a.annotation = ast.parse("typing.Any", mode="eval").body
        for a in (f.args.vararg, f.args.kwarg):
            if a is not None and a.annotation is None:
                a.annotation = ast.parse("typing.Any", mode="eval").body
        if f.returns is None:
            f.returns = (ast.Constant(None) if f.name == "__init__"
                         else ast.parse("typing.Any", mode="eval").body)


def fix(stub: str) -> str:
    tree = ast.parse(stub)
    out = []
    seen_error_alias = False
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
            continue
        if is_private(node):
            continue
        if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "__all__" and isinstance(node.value, ast.List)):
            # The package's ChatClient is the layer's subclass (cubechat/client.py): keep the
            # generated one out of `from .cubechat import *` for type checkers.
            node.value.elts = [e for e in node.value.elts
                               if not (isinstance(e, ast.Constant) and e.value == "ChatClient")]
        if isinstance(node, ast.ClassDef) and node.name == "ChatError" and not seen_error_alias:
            seen_error_alias = True  # `class ChatError(Exception): ...`, redefined right below
            continue
        if isinstance(node, ast.ClassDef):
            error = node.name == "ChatError"
            if error:
                node.bases = [ast.Name("Exception")]
            node.decorator_list = [d for d in node.decorator_list
                                   if not (isinstance(d, ast.Name) and d.id == "dataclass")]
            for inner in node.body:
                if isinstance(inner, ast.ClassDef):
                    inner.decorator_list = [d for d in inner.decorator_list
                                            if not (isinstance(d, ast.Name) and d.id == "dataclass")]
                    # A variant is a subclass of its enum at run time (and each ChatError
                    # variant one of ChatError).
                    inner.bases = [ast.Name(node.name)]
                    annotate_fields(inner, error)
            annotate_fields(node, error)
        out.append(node)
    tree.body = out
    annotate_functions(tree)
    header = ("# Type stubs of the generated module (scripts/wheel-finish.py).\n"
              "import asyncio\nimport typing\n")
    # Public but not in the generated __all__ (re-exported by the package).
    tail = "\ndef uniffi_set_event_loop(eventloop: asyncio.BaseEventLoop) -> None: ...\n"
    return header + ast.unparse(tree) + "\n" + tail


def main() -> None:
    wheel = pathlib.Path(sys.argv[1]).resolve()
    strip = "--strip" in sys.argv[2:]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "wheel", "unpack", "-d", tmp, str(wheel)],
                       check=True, stdout=subprocess.DEVNULL)
        root = next(pathlib.Path(tmp).iterdir())
        pkg = root / "cubechat" / "cubechat"
        subprocess.run([sys.executable, "-c", "from mypy.stubgen import main; main()", "-q", str(pkg / "cubechat.py"),
                        "-o", str(pathlib.Path(tmp) / "stubs")], check=True)
        stub = next((pathlib.Path(tmp) / "stubs").rglob("cubechat.pyi")).read_text()
        (pkg / "cubechat.pyi").write_text(fix(stub))
        if strip:
            subprocess.run(["strip", "--strip-unneeded", str(pkg / "libcubechat.so")], check=True)
        wheel.unlink()
        subprocess.run([sys.executable, "-m", "wheel", "pack", "-d", str(wheel.parent), str(root)],
                       check=True, stdout=subprocess.DEVNULL)
    print(f"wheel-finish: {wheel.name}: stubs added{', library stripped' if strip else ''}")


if __name__ == "__main__":
    main()
