"""Submitting a search as a Ray Job (the Jobs API of ``ray[default]``)."""

from __future__ import annotations

import time

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def submit_job(address: str, entrypoint: str, wait: bool = True, poll_s: float = 2.0) -> int:
    """Submit ``entrypoint`` to the Jobs server at ``address``; with ``wait``, stream its logs
    and return 0 when it succeeds. The cluster must have budgetune installed."""
    from budgetune.search._ray import secure_environment

    secure_environment()
    from ray.job_submission import JobSubmissionClient

    try:
        client = JobSubmissionClient(address)
    except Exception as e:  # the client raises bare exceptions for every kind of refusal
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"Cannot reach the Ray Jobs server at {address!r} ({first}); start it "
                         "with `RAY_AUTH_MODE=token ray start --head`, reach it through an SSH "
                         "tunnel, and use the cluster's token.") from None
    job_id = _submit(client, address, entrypoint)
    print(f"submitted Ray Job {job_id}: {entrypoint}", flush=True)
    if not wait:
        return 0
    printed = 0
    while True:
        status = str(client.get_job_status(job_id)).split(".")[-1]
        logs = client.get_job_logs(job_id)
        print(logs[printed:], end="", flush=True)
        printed = len(logs)
        if status in TERMINAL:
            print(f"Ray Job {job_id}: {status}", flush=True)
            return 0 if status == "SUCCEEDED" else 1
        time.sleep(poll_s)


def _submit(client, address: str, entrypoint: str, patience_s: float = 60.0) -> str:
    """Submit, waiting out a head whose job agent has not registered yet (the server answers
    500 "No available agent ... try again later" for a while after `ray start`)."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return client.submit_job(entrypoint=entrypoint)
        except RuntimeError as e:
            message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if "No available agent" in message and time.monotonic() < deadline:
                time.sleep(2.0)
                continue
            raise ValueError(f"The Ray Jobs server at {address!r} refused the job "
                             f"({message}); check that the cluster is up and runs budgetune's "
                             "version.") from None
