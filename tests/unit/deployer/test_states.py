"""The deployment state machine and naming rules."""

from __future__ import annotations

import itertools

import pytest

from services.common.errors import InvalidInput
from services.deployer.states import (
    FAILED,
    PENDING,
    READY,
    STARTING,
    STATES,
    STOPPED,
    STOPPING,
    after_failed_start,
    can_move,
    check_name,
    check_target,
    choose_name,
    slug,
)


def test_the_happy_path_and_a_restart_are_allowed() -> None:
    path = [PENDING, STARTING, READY, STARTING, READY, STOPPING, STOPPED]
    for current, new in itertools.pairwise(path):
        assert can_move(current, new), (current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (STOPPED, STARTING),
        (STOPPED, READY),
        (STOPPING, READY),
        (STOPPING, STARTING),
        (PENDING, READY),
        (FAILED, READY),
    ],
)
def test_no_way_back_from_an_ending(current: str, new: str) -> None:
    assert not can_move(current, new)


def test_every_state_can_be_stopped_or_is_stopped() -> None:
    for state in STATES:
        assert state in (STOPPING, STOPPED) or can_move(state, STOPPING), state


def test_targets() -> None:
    assert check_target("") == "local"
    assert check_target("local") == "local"
    assert check_target("aws") == "aws"
    assert check_target("gcp") == "gcp"
    with pytest.raises(InvalidInput) as caught:
        check_target("azure")
    assert caught.value.code == "invalid_target"


def test_names() -> None:
    assert check_name("tutor-v2.1:latest") == "tutor-v2.1:latest"
    for bad in ("", "-x", "a b", "x" * 65, "a/b", "é"):
        with pytest.raises(InvalidInput):
            check_name(bad)
    assert slug("My Maths Tutor (v2)") == "my-maths-tutor-v2"
    assert slug("!!!") == "model"


def test_a_name_asked_for_must_be_free_and_a_default_is_made_unique() -> None:
    assert choose_name("mine", "smollm2", set()) == "mine"
    with pytest.raises(InvalidInput) as caught:
        choose_name("mine", "smollm2", {"mine"})
    assert caught.value.code == "deployment_name_taken"
    assert choose_name("", "SmolLM2", set()) == "smollm2"
    other = choose_name("", "smollm2", {"smollm2"})
    assert other.startswith("smollm2-") and other != "smollm2"
    check_name(other)


def test_a_first_start_that_fails_ends_the_deployment() -> None:
    assert after_failed_start(was_ready_before=False, failed_restarts=0, max_failed=3) == FAILED


def test_restarts_are_retried_until_too_many_fail_in_a_row() -> None:
    assert after_failed_start(was_ready_before=True, failed_restarts=1, max_failed=3) == STARTING
    assert after_failed_start(was_ready_before=True, failed_restarts=2, max_failed=3) == STARTING
    assert after_failed_start(was_ready_before=True, failed_restarts=3, max_failed=3) == FAILED
