"""The engine's run-finished hooks: listeners registered once, called in order."""

from workflows.engine import hooks
from workflows.services.batch import batch_item_settle


def test_the_batch_service_listens_to_finished_runs_from_its_app_config():
    assert batch_item_settle in hooks._LISTENERS


def test_a_listener_registered_twice_is_called_once(monkeypatch):
    monkeypatch.setattr(hooks, "_LISTENERS", [])
    heard = []

    def listener(event):
        heard.append(event.status)

    hooks.on_run_finished(listener)
    hooks.on_run_finished(listener)
    hooks.run_finished_announce(
        hooks.RunFinished(run=None, status="completed", result="", error="")
    )

    assert heard == ["completed"]
