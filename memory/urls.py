from memory import apis

urlpatterns = [*apis.urlpatterns]
