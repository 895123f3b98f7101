from rest_framework.routers import DefaultRouter

from .views import BatchJobViewSet
from .workflows import WorkflowRunViewSet, WorkflowViewSet

router = DefaultRouter()
router.register("batch-jobs", BatchJobViewSet, basename="batch-job")
router.register("workflows", WorkflowViewSet, basename="workflow")
router.register("workflow-runs", WorkflowRunViewSet, basename="workflow-run")
urlpatterns = router.urls
