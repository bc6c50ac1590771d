"""Ready-to-use update templates shipped with ircore (page = empty: for every page).
Pages can add their own for the same event, which then win."""

from django.db import migrations

TEMPLATES = [
    # (name, event, update_status, title, body)
    ("Incident opened (automatic)", "triggered", "investigating", "Service disruption: {{ components }}",
     "We are investigating reports of a problem affecting {{ components }}. "
     "We will post an update as soon as we know more."),
    ("Cause identified (automatic)", "acknowledged", "identified", "",
     "The issue has been identified and our engineers are working on a fix."),
    ("Incident resolved (automatic)", "resolved", "resolved", "",
     "This incident has been resolved and {{ components }} are operating normally. "
     "Thank you for your patience."),
    ("Investigating", "", "investigating", "",
     "We are currently investigating this issue. More information will follow shortly."),
    ("Identified", "", "identified", "",
     "The cause has been identified and a fix is being implemented."),
    ("Monitoring a fix", "", "monitoring", "",
     "A fix has been implemented and we are monitoring the results."),
    ("Degraded performance", "", "investigating", "Degraded performance",
     "Some requests are slower than usual. We are investigating and will update this page."),
    ("Resolved", "", "resolved", "",
     "This incident has been resolved. We will publish a post-incident review if appropriate."),
]


def add_templates(apps, schema_editor):
    UpdateTemplate = apps.get_model("statuspage", "UpdateTemplate")
    for name, event, status, title, body in TEMPLATES:
        UpdateTemplate.objects.get_or_create(
            page=None, name=name, defaults={"event": event, "update_status": status, "title": title, "body": body}
        )


def remove_templates(apps, schema_editor):
    UpdateTemplate = apps.get_model("statuspage", "UpdateTemplate")
    UpdateTemplate.objects.filter(page=None, name__in=[t[0] for t in TEMPLATES]).delete()


class Migration(migrations.Migration):
    dependencies = [("statuspage", "0001_initial")]

    operations = [migrations.RunPython(add_templates, remove_templates)]
