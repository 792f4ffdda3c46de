"""A module that fails at import: pytest reports a collection error."""
import no_such_module_for_adbot  # noqa: F401


def test_never_runs():
    pass
