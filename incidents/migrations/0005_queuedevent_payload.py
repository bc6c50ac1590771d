from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0004_incident_hot_updates"),
    ]

    operations = [
        migrations.AlterField(
            model_name="queuedevent",
            name="event",
            field=models.TextField(help_text="The validated AlertEvent as JSON, without its payload."),
        ),
        migrations.AddField(
            model_name="queuedevent",
            name="payload",
            field=models.TextField(blank=True, default="", help_text="The event's payload as JSON."),
        ),
    ]
