"""The error families: every error's code starts with its family's prefix, so a caller can catch
`QueueError` (or `ActorError`, `SessionError`, `VmError`, `StoreError`) for the whole family, and
the codes travel over HTTP back into the same classes."""

from __future__ import annotations

import pytest

from agentos_nb import errors
from agentos_nb.http.errors import error_from_reply, error_reply

FAMILIES: dict[type[errors.AgentOSError], tuple[str, ...]] = {
    errors.QueueError: ("queue.",),
    errors.ActorError: ("actor.", "action."),
    errors.SessionError: ("session.",),
    errors.VmError: ("vm.",),
    errors.StoreError: ("store.",),
}


def runtime_errors() -> list[type[errors.AgentOSError]]:
    found = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.AgentOSError)
    ]
    return sorted(set(found), key=lambda kind: kind.__name__)


@pytest.mark.parametrize("kind", runtime_errors(), ids=lambda kind: kind.__name__)
def test_an_error_belongs_to_the_family_its_code_names(kind):
    for family, prefixes in FAMILIES.items():
        assert issubclass(kind, family) == kind.code.startswith(prefixes), (kind, family)


def test_every_code_is_unique():
    codes = [kind.code for kind in runtime_errors()]
    assert len(codes) == len(set(codes))


def test_a_family_is_caught_whole_and_comes_back_over_http_as_the_same_class():
    with pytest.raises(errors.QueueError):
        raise errors.QueueFull("the queue holds 3 messages", queue="tasks")
    status, body = error_reply(errors.QueueFull("the queue holds 3 messages", queue="tasks"))
    assert status == 429
    again = error_from_reply(status, body)
    assert type(again) is errors.QueueFull
    assert isinstance(again, errors.QueueError)
    assert again.details == {"queue": "tasks"}


def test_no_error_name_shadows_the_standard_library_without_saying_why():
    import builtins

    import pydantic

    for kind in runtime_errors():
        clashes = hasattr(builtins, kind.__name__) or hasattr(pydantic, kind.__name__)
        if clashes:
            assert "on purpose" in (kind.__doc__ or ""), kind
