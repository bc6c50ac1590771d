from datetime import datetime, timedelta, timezone

from django.db import migrations

NAME = "postmortems: weekly action item digest"


def create(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    now = datetime.now(timezone.utc)
    # Next Monday, 08:00 UTC; then weekly.
    monday = (now + timedelta(days=(7 - now.weekday()) % 7 or 7)).replace(hour=8, minute=0, second=0,
                                                                          microsecond=0)
    Schedule.objects.get_or_create(
        name=NAME,
        defaults={"func": "postmortems.tasks.action_item_digest", "schedule_type": "W", "repeats": -1,
                  "next_run": monday},
    )


def remove(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("postmortems", "0002_builtin_templates"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create, remove)]
