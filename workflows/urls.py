from workflows.apis import authoring, requirements, runs

urlpatterns = [*requirements.urlpatterns, *authoring.urlpatterns, *runs.urlpatterns]
