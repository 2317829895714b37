"""Past one machine with Ray (extra ``ray``): encode a huge catalog with Ray Data, serve a
:class:`~llmrec.Pipeline` with Ray Serve.

    from llmrec.apps.ray import build_pipeline, encode_catalog, serve_pipeline

    vectors = encode_catalog(items, num_workers=8)        # one encoder actor per worker
    pipeline = build_pipeline(items, vectors, llm="template")
    pipeline.save_pretrained("/shared/pipeline")
    handle = serve_pipeline("/shared/pipeline", num_replicas=4)
    recs = handle.recommend.remote("u1", k=10).result()

Ray is imported on first use, so ``import llmrec.apps.ray`` works without it; its
functions raise, without Ray, :class:`~llmrec.errors.BackendUnavailableError` with the pip
command. Generation at scale is not done here: point the ``openai`` LLM backend at a
vLLM (or any OpenAI-compatible) server, which batches requests from every replica.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmrec._validate import check_float, check_int, check_options
from llmrec.catalog import render_item_text
from llmrec.encoding import ItemEncoder
from llmrec.errors import BackendUnavailableError, ConfigError, DeviceError, InvalidInputError
from llmrec.types import Item

__all__ = ["build_pipeline", "encode_catalog", "pipeline_app", "serve_pipeline"]

logger = logging.getLogger(__name__)

_INSTALL_HINT = "pip install 'llmrec[ray]'"


def _import_ray(*submodules: str) -> Any:
    """``ray``, with ``ray.<submodule>`` imported too, or the pip hint."""
    try:
        import ray

        for submodule in submodules:
            importlib.import_module(f"ray.{submodule}")
    except ImportError as exc:
        raise BackendUnavailableError(
            f"llmrec.apps.ray needs Ray ({exc.name} is missing): {_INSTALL_HINT}"
        ) from exc
    return ray


# ---------------------------------------------------------------------------- encoding
class _EncodeBatch:
    """The Ray Data callable class: one ItemEncoder per actor, loaded once."""

    def __init__(self, backend: str, device: str, options: Mapping[str, Any]) -> None:
        # No cache: each text is seen once, and a worker should not hold the catalog.
        self.encoder = ItemEncoder(
            backend, device=device, show_progress=False, cache_size=0, **dict(options)
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.encoder.encode_texts([str(text) for text in batch["text"]])
        return {"row": batch["row"], "vector": vectors}


def _worker_device(ray: Any, device: str, num_workers: int) -> tuple[str, bool]:
    """The device each encoder actor uses and whether it takes a Ray GPU."""
    gpus = int(ray.cluster_resources().get("GPU", 0))
    if device == "auto":
        if gpus >= num_workers:
            return "cuda", True
        if gpus:
            logger.warning(
                "the Ray cluster has %d GPUs for %d workers: encoding on CPUs "
                "(ask for at most %d workers to use them)",
                gpus,
                num_workers,
                gpus,
            )
        return "cpu", False
    if device.startswith("cuda"):
        if gpus < num_workers:
            raise DeviceError(
                f"device={device!r} with {num_workers} workers needs "
                f"{num_workers} GPUs; the Ray cluster has {gpus}"
            )
        return "cuda", True  # Ray gives each actor its own GPU as cuda:0
    return device, False


def encode_catalog(
    items: Sequence[Item],
    *,
    encoder: str = "default",
    encoder_options: Mapping[str, Any] | None = None,
    num_workers: int = 1,
    batch_size: int = 256,
    device: str = "auto",
    cpus_per_worker: float = 1.0,
    show_progress: bool = True,
) -> np.ndarray:
    """Encode ``items`` on a Ray cluster: a pool of ``num_workers`` actors, each holding one
    :class:`~llmrec.ItemEncoder`, fed by Ray Data ``map_batches``.

    Connects to the running Ray instance, or starts a local one. The vectors are those
    :meth:`ItemEncoder.encode_items <llmrec.ItemEncoder.encode_items>` gives for the same
    items (identical for a deterministic encoder; for a transformer within the rounding of
    its dtype, since batches are padded differently).

    Args:
        items: The catalog items.
        encoder: A registered encoder backend name (an instance cannot be shipped to the
            workers; pass its name and ``encoder_options``).
        encoder_options: Passed to the backend on every worker (e.g. ``{"model": ...}``).
        num_workers: Encoder actors (the model is loaded once per actor).
        batch_size: Texts per ``map_batches`` call.
        device: ``"auto"`` (one GPU per worker when the cluster has a GPU for each
            worker, else CPU), ``"cpu"``, ``"cuda"`` (one GPU per worker, required).
        cpus_per_worker: CPUs Ray reserves per actor (Ray also sets the actor's
            ``OMP_NUM_THREADS``, hence its torch threads, to it unless already set).
        show_progress: Show Ray Data's progress bars.

    Returns:
        A float32 array of shape ``(len(items), dim)``; row ``n`` belongs to ``items[n]``.

    Raises:
        BackendUnavailableError: Ray is not installed.
        DeviceError: ``device="cuda"`` and the cluster has fewer GPUs than workers.
    """
    items = list(items)
    if not items:
        raise InvalidInputError("no items to encode")
    for n, item in enumerate(items):
        if not isinstance(item, Item):
            raise InvalidInputError(f"items[{n}] must be an llmrec Item, got {type(item).__name__}")
    if not isinstance(encoder, str):
        raise ConfigError(
            "encoder must be a registered backend name: an instance cannot be "
            "sent to the Ray workers"
        )
    encoder_options = check_options(encoder_options, "encoder_options")
    num_workers = check_int(num_workers, "num_workers", low=1)
    batch_size = check_int(batch_size, "batch_size", low=1)
    cpus_per_worker = check_float(cpus_per_worker, "cpus_per_worker", low=0, low_open=True)
    if not isinstance(device, str):
        raise ConfigError(f"device must be a str ('auto', 'cpu', 'cuda', ...), got {device!r}")
    ray = _import_ray("data")
    if not ray.is_initialized():
        ray.init()
    worker_device, use_gpu = _worker_device(ray, device, num_workers)
    logger.info("encoding %d items with %d %s workers", len(items), num_workers, worker_device)
    texts = [render_item_text(item) for item in items]
    context = ray.data.DataContext.get_current()
    saved = (context.enable_progress_bars, context.print_on_execution_start)
    # A dataset copies the current context when it is made: set it first.
    context.enable_progress_bars = show_progress
    context.print_on_execution_start = show_progress
    out: np.ndarray | None = None
    seen = np.zeros(len(texts), dtype=bool)
    try:
        # Ray Data may deliver batches in any order: each text carries its row.
        blocks = max(1, min(math.ceil(len(texts) / batch_size), 4 * num_workers))
        dataset = ray.data.from_items(
            [{"row": n, "text": text} for n, text in enumerate(texts)], override_num_blocks=blocks
        )
        encoded = dataset.map_batches(
            _EncodeBatch,
            fn_constructor_kwargs={
                "backend": encoder,
                "device": worker_device,
                "options": encoder_options,
            },
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=num_workers),
            num_cpus=cpus_per_worker,
            num_gpus=1 if use_gpu else 0,
        )
        for batch in encoded.iter_batches(batch_size=None, batch_format="numpy"):
            rows = np.asarray(batch["row"], dtype=np.int64)
            vectors = np.asarray(batch["vector"], dtype=np.float32)
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[rows] = vectors
            seen[rows] = True
    finally:
        context.enable_progress_bars, context.print_on_execution_start = saved
    if out is None or not seen.all():  # pragma: no cover - Ray Data lost rows
        raise RuntimeError(f"Ray Data returned {int(seen.sum())} of {len(texts)} rows")
    return out


def build_pipeline(
    items: Sequence[Item],
    vectors: np.ndarray,
    *,
    encoder: str = "default",
    encoder_options: Mapping[str, Any] | None = None,
    device: Any = "auto",
    **options: Any,
) -> Any:
    """:meth:`Pipeline.from_catalog <llmrec.Pipeline.from_catalog>` with the item vectors
    already computed (by :func:`encode_catalog`), so the catalog is not encoded again.

    The encoder is still loaded here: queries and stated preferences are encoded at
    request time. ``vectors`` must come from the same encoder and options.

    Args:
        items: The catalog, in the order of ``vectors``.
        vectors: ``(len(items), dim)`` item vectors.
        encoder: The encoder backend name ``vectors`` were made with.
        encoder_options: Its options.
        device: Where the pipeline runs.
        **options: Any other :meth:`~llmrec.Pipeline.from_catalog` argument.
    """
    from llmrec.pipeline import Pipeline

    if not isinstance(encoder, str):
        raise ConfigError("encoder must be the backend name the vectors were made with")
    return Pipeline.from_catalog(
        items,
        encoder=encoder,
        encoder_options=encoder_options,
        device=device,
        item_vectors=vectors,
        **options,
    )


# ---------------------------------------------------------------------------- serving
def pipeline_app(
    path_or_pipeline: str | Path | Any,
    *,
    num_replicas: int = 1,
    max_batch_size: int = 16,
    batch_wait_timeout_s: float = 0.01,
    pipeline_options: Mapping[str, Any] | None = None,
    ray_actor_options: Mapping[str, Any] | None = None,
    api_key: str | None = None,
) -> Any:
    """A Ray Serve application serving a saved pipeline, for ``serve.run`` or
    :func:`serve_pipeline`.

    Each replica loads the pipeline with :meth:`~llmrec.Pipeline.from_pretrained` and
    answers, through a deployment handle, ``recommend(user_id, k, **options)`` (concurrent
    calls are batched into one :meth:`~llmrec.Pipeline.recommend_batch`, so generated texts
    are written in one model batch), ``observe(event)``, ``observe_many(events)`` and
    ``batch_sizes()``; over HTTP, ``POST /recommend``, ``POST /recommend/stream``
    (server-sent events, one request at a time: streams are not batched) and
    ``POST /events`` with the bodies and answers of :mod:`llmrec.apps.server`, and
    ``GET /health``. With an API key every HTTP route but ``/health`` needs header
    ``X-API-Key``; the deployment handle is not checked (it is reachable only from
    inside the Ray cluster). The other routes of :mod:`llmrec.apps.server` (users, items,
    ``/metrics``, snapshots) are not served here.

    Every replica holds its own copy of the profiles: an observed event reaches only the
    replica that received it. With live updates, keep one replica (or replay the same
    events to each); several replicas suit read-mostly serving.

    Args:
        path_or_pipeline: A :meth:`~llmrec.Pipeline.save_pretrained` directory every
            replica can read, or a Pipeline (saved and shipped with the application; use a
            path for pipelines of more than some tens of MB).
        num_replicas: Replicas (processes) of the deployment.
        max_batch_size: Most recommend calls answered together.
        batch_wait_timeout_s: Longest wait for a batch to fill.
        pipeline_options: Passed to :meth:`~llmrec.Pipeline.from_pretrained` (``device``,
            ``llm``, ``llm_options``, ``pseudonymize_key``).
        ray_actor_options: Resources per replica, e.g. ``{"num_gpus": 1}``.
        api_key: The key HTTP requests must send; ``None`` takes the environment
            variable ``LLMREC_API_KEY`` when it is set (no key otherwise).

    Raises:
        ConfigError: a bad option, or an ``api_key`` that is not a non-empty str.
    """
    _import_ray("serve")
    api_key = os.environ.get("LLMREC_API_KEY") or None if api_key is None else api_key
    if api_key is not None and (not isinstance(api_key, str) or not api_key):
        raise ConfigError(f"api_key must be a non-empty str or None, got {api_key!r:.40}")
    num_replicas = check_int(num_replicas, "num_replicas", low=1)
    max_batch_size = check_int(max_batch_size, "max_batch_size", low=1)
    batch_wait_timeout_s = check_float(batch_wait_timeout_s, "batch_wait_timeout_s", low=0)
    pipeline_options = check_options(pipeline_options, "pipeline_options")
    ray_actor_options = check_options(ray_actor_options, "ray_actor_options")
    from llmrec.apps._serve import PipelineDeployment, pack_pipeline
    from llmrec.pipeline import Pipeline

    if isinstance(path_or_pipeline, (str, Path)):
        source: str | bytes = str(path_or_pipeline)
    elif isinstance(path_or_pipeline, Pipeline):
        source = pack_pipeline(path_or_pipeline)
    else:
        raise ConfigError(
            f"path_or_pipeline must be a save directory or a Pipeline, got "
            f"{type(path_or_pipeline).__name__}"
        )

    deployment = PipelineDeployment.options(
        num_replicas=num_replicas, ray_actor_options=ray_actor_options
    )
    return deployment.bind(source, pipeline_options, max_batch_size, batch_wait_timeout_s, api_key)


def serve_pipeline(
    path_or_pipeline: str | Path | Any,
    *,
    name: str = "llmrec",
    route_prefix: str = "/",
    **options: Any,
) -> Any:
    """Run :func:`pipeline_app` on Ray Serve (starting it if needed) and return its
    deployment handle: ``handle.recommend.remote(user_id, k=10).result()``.

    Args:
        path_or_pipeline: See :func:`pipeline_app`.
        name: The Serve application name.
        route_prefix: Where its HTTP routes live on the Serve proxy.
        **options: Any other :func:`pipeline_app` argument.
    """
    app = pipeline_app(path_or_pipeline, **options)
    from ray import serve

    return serve.run(app, name=name, route_prefix=route_prefix, blocking=False)
