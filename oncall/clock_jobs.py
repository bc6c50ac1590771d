"""On-call's clock jobs (registered into ircore.clock from OncallConfig.ready())."""

from __future__ import annotations

from ircore.clock import clock_job_register


def register() -> None:
    from oncall import escalation, heartbeats, notify, tasks

    # The engine enqueues through django-q2 once the app is ready.
    escalation.enqueue = tasks.enqueue
    clock_job_register("escalation_steps", escalation.escalations_due_dispatch, every=1)
    clock_job_register("notifications", notify.notifications_due_dispatch, every=1)
    clock_job_register("ack_timeouts", escalation.ack_timeouts_run, every=5)
    clock_job_register("auto_resolve", escalation.auto_resolve_run, every=15)
    clock_job_register("heartbeats", heartbeats.heartbeats_expire, every=5)
    clock_job_register("maintenance", escalation.maintenance_run, every=10)
