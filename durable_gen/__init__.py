"""durable_gen: durable workflows as plain Python generators.

A workflow is a generator function that yields operation descriptors::

    def order_flow(event):
        hold = yield Step(reserve, event["sku"], name="reserve")
        yield Wait(seconds=30)
        return {"hold": hold}

A pure interpreter replays the generator against its checkpoint log: recorded
operations return their stored result without running user code, new ones are
executed and checkpointed. The public API is exactly ``__all__``.
"""

from ._core.batch import (
    BatchItem,
    BatchItemStatus,
    BatchResult,
    CompletionDecision,
    CompletionItemStatus,
    CompletionOutcome,
    CompletionPolicy,
    CompletionReason,
    CompletionStatus,
    complete_batch,
    continue_batch,
)
from ._core.contract import (
    DurableStore,
    EngineStore,
    ExecutionInfo,
    LeaseHeldError,
    LeaseLostError,
)
from ._core.descriptors import (
    AT_LEAST_ONCE_PER_RETRY,
    AT_MOST_ONCE_PER_RETRY,
    All,
    AllSettled,
    AwaitCallback,
    CallbackHandle,
    ChildContext,
    CreateCallback,
    Deprecated,
    Invoke,
    Map,
    Nesting,
    Parallel,
    ParallelBranch,
    Patched,
    Race,
    Step,
    StepSemantics,
    Wait,
    WaitForCallback,
    WaitForCondition,
    Workflow,
)
from ._core.descriptors import Any_ as Any
from ._core.errors import (
    BatchCompletionError,
    CallbackError,
    CallbackFailedError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    ChildContextError,
    CombinatorError,
    CorruptLogError,
    DurableGenError,
    ErrorObject,
    ExecutionAlreadyStartedError,
    ExecutionConflictError,
    ExecutionError,
    ExecutionNotFoundError,
    InternalError,
    InvocationError,
    InvokeError,
    NonDeterminismError,
    OperationError,
    PayloadTooLargeError,
    RetryableSerDesError,
    SerializationError,
    StepError,
    StepInterruptedError,
    StoreError,
    UnrecoverableError,
    ValidationError,
    VersionMismatchError,
    WaitForConditionError,
    WorkflowDefinitionError,
    WorkflowFailedError,
)
from ._core.log import (
    Operation,
    OperationAction,
    OperationStatus,
    OperationSubType,
    OperationType,
    OperationUpdate,
    operation_id,
)
from ._core.retry import (
    Backoff,
    Jitter,
    RetryDecision,
    RetryPolicy,
    WaitStrategy,
)
from ._core.serdes import (
    DEFAULT_SERDES,
    DefaultSerdes,
    JsonSerdes,
    PassThroughSerdes,
    Serdes,
)
from ._engine.clock import (
    RealClock,
    VirtualClock,
)
from ._engine.compose import with_retry
from ._engine.driver import current_attempt
from ._engine.durable import DurableEngine
from ._engine.hooks import Hooks
from ._engine.local import ExecutionResult
from ._engine.logger import (
    DurableLogger,
    get_logger,
)
from ._engine.memory import InMemoryEngine
from ._engine.meter import KindUsage, Meter, MeterKind, PayloadSize, compute_meter, meter_execution
from ._engine.pricing import (
    CostBreakdown,
    Estimate,
    Prices,
    estimate,
    load_prices,
    prices_from_flags,
)
from ._engine.queues import Queue
from ._engine.schedules import Schedule
from ._engine.sqlite import SqliteEngine
from ._stores.encrypted import (
    DecryptionError,
    EncryptedStore,
    KeyRing,
    PayloadCipher,
)
from ._stores.factory import open_store
from ._stores.memory import MemoryStore
from ._stores.queues import DuplicateExecutionError, QueueFullError
from ._stores.sqlite import (
    SqliteStore,
    default_db_path,
)

__version__ = "0.1.0"

__all__ = [
    "CostBreakdown",
    "Estimate",
    "DurableEngine",
    "DurableStore",
    "DuplicateExecutionError",
    "Queue",
    "QueueFullError",
    "Schedule",
    "EngineStore",
    "ExecutionInfo",
    "KindUsage",
    "LeaseHeldError",
    "LeaseLostError",
    "Meter",
    "MeterKind",
    "PayloadSize",
    "Prices",
    "SqliteEngine",
    "SqliteStore",
    "compute_meter",
    "default_db_path",
    "open_store",
    "estimate",
    "load_prices",
    "meter_execution",
    "prices_from_flags",
    "DecryptionError",
    "EncryptedStore",
    "KeyRing",
    "PayloadCipher",
    "DurableLogger",
    "Hooks",
    "get_logger",
    "All",
    "AllSettled",
    "Any",
    "AwaitCallback",
    "BatchItem",
    "BatchItemStatus",
    "BatchResult",
    "CallbackError",
    "CallbackFailedError",
    "CallbackHandle",
    "CallbackSubmitterError",
    "CallbackTimeoutError",
    "CombinatorError",
    "CompletionPolicy",
    "CompletionReason",
    "CreateCallback",
    "Invoke",
    "InvokeError",
    "Map",
    "Nesting",
    "Parallel",
    "Race",
    "WaitForCallback",
    "WaitForCondition",
    "WaitForConditionError",
    "AT_LEAST_ONCE_PER_RETRY",
    "AT_MOST_ONCE_PER_RETRY",
    "Backoff",
    "ChildContext",
    "ChildContextError",
    "CorruptLogError",
    "DEFAULT_SERDES",
    "DefaultSerdes",
    "DurableGenError",
    "ErrorObject",
    "ExecutionResult",
    "InMemoryEngine",
    "InternalError",
    "Jitter",
    "JsonSerdes",
    "MemoryStore",
    "NonDeterminismError",
    "Operation",
    "OperationAction",
    "OperationError",
    "OperationStatus",
    "OperationSubType",
    "OperationType",
    "OperationUpdate",
    "PassThroughSerdes",
    "PayloadTooLargeError",
    "RealClock",
    "RetryDecision",
    "RetryPolicy",
    "SerializationError",
    "Serdes",
    "Step",
    "Workflow",
    "StepError",
    "StepInterruptedError",
    "StepSemantics",
    "ExecutionAlreadyStartedError",
    "ExecutionConflictError",
    "VersionMismatchError",
    "ExecutionNotFoundError",
    "StoreError",
    "ValidationError",
    "VirtualClock",
    "Wait",
    "WaitStrategy",
    "WorkflowDefinitionError",
    "WorkflowFailedError",
    "current_attempt",
    "operation_id",
    "BatchCompletionError",
    "CompletionDecision",
    "CompletionItemStatus",
    "CompletionOutcome",
    "CompletionStatus",
    "ParallelBranch",
    "Patched",
    "Deprecated",
    "complete_batch",
    "continue_batch",
    "with_retry",
    "ExecutionError",
    "InvocationError",
    "RetryableSerDesError",
    "UnrecoverableError",
]
