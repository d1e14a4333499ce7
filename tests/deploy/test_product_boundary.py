"""The installed product carries no test or development infrastructure."""

from __future__ import annotations

import ast
from pathlib import Path

PRODUCT = Path(__file__).resolve().parents[2] / "src" / "flageemonitor"
NOT_PRODUCT = {"tests", "devtools"}


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_product_module_imports_tests_or_devtools() -> None:
    offenders = {str(p.relative_to(PRODUCT)): sorted(_imported_roots(p) & NOT_PRODUCT)
                 for p in PRODUCT.rglob("*.py") if _imported_roots(p) & NOT_PRODUCT}
    assert offenders == {}


def test_the_sshd_persona_fleet_is_not_in_the_product() -> None:
    shipped = [p for p in PRODUCT.rglob("*.py") if "sshd" in p.read_text(encoding="utf-8").lower()
               and "ChrootDirectory" in p.read_text(encoding="utf-8")]
    assert shipped == []


def _server_only_distributions() -> set[str]:
    text = (PRODUCT.parents[1] / "deploy/build-image.sh").read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith("SERVER_ONLY="))
    return set(line.split("=", 1)[1].strip('"').split())


def test_the_proxy_image_may_leave_out_what_only_the_server_imports() -> None:
    """build-image.sh prunes these from the proxy image: nothing outside `server/` may import them."""
    pruned = {name.replace("-", "_") for name in _server_only_distributions()}
    assert {"sqlalchemy", "fastapi", "uvicorn"} <= pruned
    offenders = {str(p.relative_to(PRODUCT)): sorted(_imported_roots(p) & pruned)
                 for p in PRODUCT.rglob("*.py")
                 if "server" not in p.relative_to(PRODUCT).parts and _imported_roots(p) & pruned}
    assert offenders == {}
