"""The worker's workflow runner: Temporal's sandbox, tuned for how invoiceflow uses it.

Two costs of the stock sandbox showed in py-spy on a busy worker, and neither buys anything here:

- It executes a workflow's module afresh for every workflow it creates, or re-creates after eviction
  from the cache, so that module state cannot leak between runs. Our workflow modules hold only
  constants, and the re-import (module body, ``@workflow.defn``, type hints) was 18 % of the worker's
  CPU, so the ``workflows`` package is passed through. The sandbox's runtime checks stay on:
  ``datetime.now()``, I/O and the like still fail a workflow task.
- Before it encodes or decodes the payloads of an activation, the SDK asks the workflow instance, in
  the sandbox, for the serialization context of every command and job it visits (six visits an
  activation, an ``exec`` into the sandbox each time), so that a payload codec or external storage can
  know whose payload it handles. The answer is used by nothing else: the JSON conversion itself happens
  inside the workflow with its own context. Without a codec and without external storage every one of
  those visits leaves the payloads as they are, whatever the context, and the asking was 9-10 % of the
  worker process's CPU in an invoice's life. ``context_free=True`` answers "no context" without
  entering the sandbox; ``runner_for`` uses it only when the client has neither.
"""

from __future__ import annotations

from typing import Any

from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.converter import DataConverter, SerializationContext, StorageDriverStoreContext
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
from temporalio.workflow import Info


class _ContextFreeInstance(WorkflowInstance):
    """A sandboxed workflow instance that tells the payload visitors there is no context to apply."""

    def __init__(self, inner: WorkflowInstance) -> None:
        self._inner = inner

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        return self._inner.activate(act)

    def get_serialization_context(self, command_info: Any) -> SerializationContext | None:
        return None

    def get_external_store_context(self, command_info: Any) -> StorageDriverStoreContext:
        return StorageDriverStoreContext(target=None)

    def get_info(self) -> Info:
        return self._inner.get_info()

    def get_thread_id(self) -> int | None:
        return self._inner.get_thread_id()

    def __getattr__(self, name: str) -> Any:  # anything a later SDK adds goes to the real instance
        return getattr(self._inner, name)


class InvoiceflowRunner(SandboxedWorkflowRunner):
    """``SandboxedWorkflowRunner`` whose instances skip the serialization-context round trips."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _ContextFreeInstance(super().create_instance(det))


def needs_context(converter: DataConverter) -> bool:
    """Whether payloads pass through anything that may depend on whose they are."""
    return converter.payload_codec is not None or converter.external_storage is not None


def workflow_runner(*packages: str, context_free: bool = True) -> SandboxedWorkflowRunner:
    """The sandbox with ``packages`` passed through; ``context_free`` only for a converter without a
    payload codec or external storage (see the module's docstring)."""
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*packages)
    kind = InvoiceflowRunner if context_free else SandboxedWorkflowRunner
    return kind(restrictions=restrictions)


def runner_for(converter: DataConverter, *packages: str) -> SandboxedWorkflowRunner:
    """The runner for a worker whose client converts payloads with ``converter``."""
    return workflow_runner(*packages, context_free=not needs_context(converter))
