"""`modelwatch run`'s exit code from the flow run's final state (real Prefect state objects)."""

from prefect.states import Completed, Crashed, Failed

from modelwatch.app.cli import exit_code


def test_exit_codes_tell_accepted_rejected_and_crashed_apart():
    assert exit_code(Completed()) == 0
    assert exit_code(Completed(name="Skipped", message="same content as batch-001")) == 0
    assert exit_code(Failed(name="Rejected", message="column 'hum' is missing")) == 2
    assert exit_code(Failed(message="Flow run encountered an exception: KeyError")) == 1
    assert exit_code(Crashed(message="killed")) == 1
