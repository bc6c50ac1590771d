from django.urls import path

from oncall import views

app_name = "oncall"

urlpatterns = [
    path("ical/schedule/<str:token>.ics", views.schedule_feed, name="schedule-ical"),
    path("ical/user/<str:token>.ics", views.user_feed, name="user-ical"),
]
