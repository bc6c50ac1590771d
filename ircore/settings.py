"""ircore settings: configured only by environment variables (see README, Configuration)."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from ircore.env import database_from_url, env_bool, env_int, env_list, env_str, url_query_defaults

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("IRCORE_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
# Set by `make run` / `make test`: a local, single-machine run that may keep its own
# generated secret under var/. Production runs must pass SECRET_KEY explicitly.
LOCAL_RUN = env_bool("IRCORE_LOCAL_RUN", False)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    if not (DEBUG or LOCAL_RUN):
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable to a long random "
            "string (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(50))'`), "
            "or use `make run` for a local install, which generates one under var/."
        )
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()

PUBLIC_URL = env_str("PUBLIC_URL", "http://localhost:8000").rstrip("/")
_public = urlsplit(PUBLIC_URL)
ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS",
    ["localhost", "127.0.0.1", "[::1]", "testserver"] + ([_public.hostname] if _public.hostname else []),
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [f"{_public.scheme}://{_public.netloc}"])
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _public.scheme == "https"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "ircore.apps.IrcoreConfig",
    "ircore.apps.IrcoreAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "anymail",
    "incidents.apps.IncidentsConfig",
    "oncall.apps.OncallConfig",
    "statuspage.apps.StatuspageConfig",
    "postmortems.apps.PostmortemsConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "statuspage.middleware.StatusHostMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "ircore.urls"
WSGI_APPLICATION = "ircore.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": database_from_url(env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'ircore.sqlite3'}"))
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    # Bounded waits: a cache that hangs must not hang requests. While Redis is
    # unreachable, ircore.cache keeps each process to its own memory (no 500s).
    CACHES = {"default": {
        "BACKEND": "ircore.cache.ResilientRedisCache", "LOCATION": REDIS_URL,
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

Q_CLUSTER = {
    "name": "ircore",
    "workers": env_int("Q_WORKERS", 2),
    "timeout": env_int("Q_TIMEOUT", 60),
    "retry": env_int("Q_RETRY", 90),
    "max_attempts": env_int("Q_MAX_ATTEMPTS", 5),
    "catch_up": False,
    "save_limit": 1000,
    "label": "Task queue",
}
if REDIS_URL:
    # Bounded waits, as for the cache: a Redis that accepts connections and never answers
    # hung every request that enqueued a task. A timeout is an outage (ircore.tasks keeps
    # the task); socket_timeout stays above the worker's 1 s blocking pop. The URL may
    # set its own values.
    Q_CLUSTER["redis"] = url_query_defaults(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 0.5

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Email out. Default: written to files under var/mail (nothing leaves the machine).
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = VAR_DIR / "mail"
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "ircore <ircore@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
INBOUND_EMAIL_DOMAIN = env_str("INBOUND_EMAIL_DOMAIN", "ircore.localhost")
ANYMAIL = {
    k: v
    for k, v in {
        "WEBHOOK_SECRET": env_str("ANYMAIL_WEBHOOK_SECRET"),
        "MAILGUN_WEBHOOK_SIGNING_KEY": env_str("MAILGUN_WEBHOOK_SIGNING_KEY"),
        "RESEND_INBOUND_SECRET": env_str("RESEND_INBOUND_SECRET"),
        # Resend's inbound webhook carries no message body: anymail fetches it with this key.
        "RESEND_API_KEY": env_str("RESEND_API_KEY"),
        "BREVO_API_KEY": env_str("BREVO_API_KEY"),  # Brevo inbound fetches attachments with it
    }.items()
    if v
}
# Inbound email (replies to notifications, email integrations): the ESP whose
# /anymail/<esp>/inbound/ webhook is accepted (postmark, mailgun, amazon_ses, mailjet,
# brevo, resend...; empty: none), the built-in `manage.py smtpd` listener, and the
# largest message accepted either way.
INBOUND_EMAIL_ESP = env_str("INBOUND_EMAIL_ESP", "").strip().lower()
INBOUND_SMTP_HOST = env_str("INBOUND_SMTP_HOST", "127.0.0.1")
INBOUND_SMTP_PORT = env_int("INBOUND_SMTP_PORT", 2525)
# PEM certificate chain and key: the listener then offers STARTTLS (senders encrypt).
INBOUND_SMTP_TLS_CERT = env_str("INBOUND_SMTP_TLS_CERT", "")
INBOUND_SMTP_TLS_KEY = env_str("INBOUND_SMTP_TLS_KEY", "")
INBOUND_EMAIL_MAX_BYTES = env_int("INBOUND_EMAIL_MAX_BYTES", 10 * 1024 * 1024)
INBOUND_EMAIL_RETENTION_DAYS = env_int("INBOUND_EMAIL_RETENTION_DAYS", 30)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "ircore.api_parsers.StorableJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"anon": "60/min"},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ircore API",
    "DESCRIPTION": "Incidents, alerts, services, on-call and status pages.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the drf-spectacular-sidecar package, served by whitenoise: the docs
    # page must work on an install without internet access.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Tag operations by resource (incidents, services, ...) rather than "v1".
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    # One schema name per choice set shared by several fields.
    "ENUM_NAME_OVERRIDES": {
        "SeverityEnum": "incidents.models.Severity",
        "PriorityEnum": "incidents.models.Priority",
        "TeamRoleEnum": "ircore.models.TeamMembership.Role",
        "IncidentStatusEnum": "incidents.models.Incident.Status",
        "IntegrationKindEnum": "incidents.models.Integration.Kind",
        "TimelineViaEnum": "incidents.models.TimelineEntry.Via",
        "AlertOutcomeEnum": "incidents.models.Alert.Outcome",
        "ProblemStatusEnum": "incidents.models.Problem.Status",
        "TimelineKindEnum": "incidents.models.TimelineEntry.Kind",
        "PostmortemStatusEnum": "postmortems.models.Postmortem.Status",
        "ActionItemStatusEnum": "postmortems.models.ActionItem.Status",
        "ActionItemKindEnum": "postmortems.models.ActionItem.Kind",
        "ActionItemPriorityEnum": "postmortems.models.ActionItem.Priority",
        "ComponentStatusEnum": "statuspage.models.ComponentStatus",
        "PublicIncidentStatusEnum": "statuspage.models.PublicIncident.Status",
        "MaintenanceStatusEnum": "statuspage.models.Maintenance.Status",
        "PublicImpactEnum": "statuspage.models.Impact",
        "StatusPageVisibilityEnum": "statuspage.models.StatusPage.Visibility",
        "SubscriberKindEnum": "statuspage.models.Subscriber.Kind",
        "ServiceLinkModeEnum": "statuspage.models.ComponentServiceLink.Mode",
    },
}

# Ingestion limits (per integration; an integration may override the rate).
INGEST_MAX_BODY_BYTES = env_int("INGEST_MAX_BODY_BYTES", 512 * 1024)
INGEST_RATE_LIMIT_PER_MINUTE = env_int("INGEST_RATE_LIMIT_PER_MINUTE", 6000)

# Status pages: when set, every change re-exports the page's static copy to
# <dir>/<slug>/ in a django-q2 task (serve it so the page stays up when ircore is down).
STATUSPAGE_EXPORT_DIR = env_str("STATUSPAGE_EXPORT_DIR", "")
# Status page webhook subscribers on private/loopback addresses are refused unless set.
STATUSPAGE_WEBHOOK_ALLOW_PRIVATE = env_bool("STATUSPAGE_WEBHOOK_ALLOW_PRIVATE", False)
# Status pages served at the root of their own host name: "status.example.com=<slug>,...".
STATUSPAGE_HOSTS = env_list("STATUSPAGE_HOSTS", [])

# Outgoing webhooks (escalation steps, webhook contact methods): seconds to wait, and
# whether private/loopback addresses are allowed (off: a URL cannot reach the internal network).
ONCALL_WEBHOOK_TIMEOUT = env_int("ONCALL_WEBHOOK_TIMEOUT", 10)
ONCALL_WEBHOOK_ALLOW_PRIVATE = env_bool("ONCALL_WEBHOOK_ALLOW_PRIVATE", False)
# Crash recovery: seconds before work claimed by a clock (a due escalation step) or a
# send begun by a worker that died is handed out again.
ONCALL_CLAIM_LEASE_SECONDS = env_int("ONCALL_CLAIM_LEASE_SECONDS", 30)
ONCALL_SEND_LEASE_SECONDS = env_int("ONCALL_SEND_LEASE_SECONDS", 300)

# Postmortems: resolved incidents of these severities owe one (listed on the dashboard).
POSTMORTEM_REQUIRED_SEVERITIES = env_list("POSTMORTEM_REQUIRED_SEVERITIES", ["SEV1", "SEV2"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
