from webactions import apis

urlpatterns = [*apis.urlpatterns]
