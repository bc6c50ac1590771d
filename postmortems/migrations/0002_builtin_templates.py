from django.db import migrations

from postmortems.builtin_templates import BUILTIN


def create(apps, schema_editor):
    PostmortemTemplate = apps.get_model("postmortems", "PostmortemTemplate")
    for name, description, body, is_default in BUILTIN:
        PostmortemTemplate.objects.get_or_create(
            team=None, name=name, defaults={"description": description, "body": body, "is_default": is_default}
        )


def remove(apps, schema_editor):
    PostmortemTemplate = apps.get_model("postmortems", "PostmortemTemplate")
    PostmortemTemplate.objects.filter(team=None, name__in=[b[0] for b in BUILTIN]).delete()


class Migration(migrations.Migration):
    dependencies = [("postmortems", "0001_initial")]

    operations = [migrations.RunPython(create, remove)]
