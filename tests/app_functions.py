"""function_app's functions by name, fetched once per test session (`get_functions()` works once per app)."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def app_functions() -> dict[str, Any]:
    """{function name: FunctionBuilder output} of function_app.app."""
    import function_app

    return {fn.get_function_name(): fn for fn in function_app.app.get_functions()}
