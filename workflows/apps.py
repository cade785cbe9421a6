from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Workflows"

    def ready(self) -> None:
        # The engine announces finished runs; the batch service settles its items on them
        # (the engine itself imports no service: workflows/engine/hooks.py).
        from workflows.engine import hooks
        from workflows.services.batch import batch_item_settle

        hooks.on_run_finished(batch_item_settle)
