from rest_framework.routers import DefaultRouter

from .audiences import AudienceViewSet, TopicViewSet
from .broadcasts import BroadcastViewSet
from .views import BatchJobViewSet
from .workflows import WorkflowRunViewSet, WorkflowViewSet

router = DefaultRouter()
router.register("batch-jobs", BatchJobViewSet, basename="batch-job")
router.register("audiences", AudienceViewSet, basename="audience")
router.register("topics", TopicViewSet, basename="topic")
router.register("broadcasts", BroadcastViewSet, basename="broadcast")
router.register("workflows", WorkflowViewSet, basename="workflow")
router.register("workflow-runs", WorkflowRunViewSet, basename="workflow-run")
urlpatterns = router.urls
