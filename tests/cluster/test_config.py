"""The checked-in Serve config builds the application it documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray.serve", reason="the [cluster] extra is not installed")
yaml = pytest.importorskip("yaml")

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "serve-cluster.yaml"


def _app_args() -> dict[str, Any]:
    config = yaml.safe_load(CONFIG.read_text())
    (app,) = config["applications"]
    assert app["import_path"] == "browser_llm.cluster.app:build_app"
    assert config["http_options"]["host"] == "127.0.0.1"
    args: dict[str, Any] = app["args"]
    return args


def test_config_args_map_to_deployment_options() -> None:
    from browser_llm.cluster.app import ClusterArgs, build_app

    args = ClusterArgs(**_app_args())
    options = args.engine_options()
    assert options["ray_actor_options"] == {"num_cpus": args.threads}
    assert options["max_ongoing_requests"] == args.parallel + args.max_queue
    assert options["graceful_shutdown_timeout_s"] == args.shutdown_grace_s
    assert options["num_replicas"] == args.replicas
    assert args.replica_settings()["rate_limit_storage"] == args.redis
    # The edge admits what all replicas together can hold.
    assert args.ingress_settings()["parallel"] == args.parallel * args.replicas
    build_app(_app_args())  # builds without a cluster (binding only)


def test_ingress_limits_derive_from_the_admission_bound() -> None:
    """Serve's limits on the ingress sit above the app's own bound (which answers the
    spec's 503) by the headroom that health, status and the 503s themselves use."""
    from browser_llm.cluster.app import ClusterArgs

    args = ClusterArgs(**_app_args())
    admitted = (args.parallel + args.max_queue) * args.replicas
    edge = args.ingress_settings()
    assert edge["parallel"] + edge["max_queue"] == admitted
    options = args.ingress_options()
    assert options["max_ongoing_requests"] == admitted + args.ingress_headroom
    assert options["max_queued_requests"] == args.ingress_headroom
    assert options["backpressure_config"].retry_after_s is not None
    scaled = ClusterArgs(replicas=2, max_replicas=4, parallel=2, max_queue=3, ingress_headroom=5)
    assert scaled.ingress_options()["max_ongoing_requests"] == (2 + 3) * 4 + 5
    router = args.engine_options()["request_router_config"]
    assert router.request_router_kwargs["hold_s"] == args.hold_s


def test_autoscaling_bounds_replace_the_fixed_count() -> None:
    from browser_llm.cluster.app import ClusterArgs

    options = ClusterArgs(replicas=2, min_replicas=1, max_replicas=4).engine_options()
    assert "num_replicas" not in options
    assert options["autoscaling_config"]["max_replicas"] == 4
