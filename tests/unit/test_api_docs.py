"""docs/api.md's generated parts are what the code generates: the documentation cannot drift."""

from __future__ import annotations

from pathlib import Path

from jsonschema import Draft202012Validator

from bridge.api.docgen import BEGIN, END, default_handlers, method_reference, render_method, rewrite

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_docs_api_md_is_up_to_date() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert rewrite(text, default_handlers()) == text, "run: python -m bridge.api.docgen"


def test_every_method_is_documented_with_params_result_and_errors() -> None:
    handlers = default_handlers()
    block = method_reference(handlers)
    assert block.startswith(BEGIN) and block.endswith(END)
    for handler in handlers:
        section = render_method(handler)
        assert f"### `{handler.name}`" in block
        assert "Params" in section and "Result" in section and "Errors:" in section
        # A bare `object` result says nothing to an integrator: every method describes its fields.
        assert "Result: object." not in section, f"{handler.name} has no result schema"


def test_every_schema_is_valid_json_schema() -> None:
    """Checked here once rather than at each daemon start (bridge.api.methods.Registry)."""
    for handler in default_handlers():
        Draft202012Validator.check_schema(handler.params_schema)
        Draft202012Validator.check_schema(handler.result_schema)
