from workflows.apis import authoring, batch, requirements, runs

urlpatterns = [
    *requirements.urlpatterns,
    *authoring.urlpatterns,
    *runs.urlpatterns,
    *batch.urlpatterns,
]
