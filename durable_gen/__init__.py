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

from ._descriptors import (
    AT_LEAST_ONCE_PER_RETRY,
    AT_MOST_ONCE_PER_RETRY,
    ChildContext,
    Step,
    StepSemantics,
    Wait,
)
from ._driver import current_attempt
from ._errors import (
    ChildContextError,
    CorruptLogError,
    DurableGenError,
    ErrorObject,
    InternalError,
    NonDeterminismError,
    OperationError,
    SerializationError,
    StepError,
    StepInterruptedError,
    StoreError,
    ValidationError,
    WorkflowDefinitionError,
    WorkflowFailedError,
)
from ._log import (
    Operation,
    OperationAction,
    OperationStatus,
    OperationSubType,
    OperationType,
    OperationUpdate,
    operation_id,
)
from ._memory import ExecutionResult, InMemoryEngine, MemoryStore, RealClock, VirtualClock
from ._retry import Backoff, Jitter, RetryDecision, RetryPolicy, WaitStrategy
from ._serdes import DEFAULT_SERDES, DefaultSerdes, JsonSerdes, PassThroughSerdes, Serdes

__version__ = "0.1.0"

__all__ = [
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
    "RealClock",
    "RetryDecision",
    "RetryPolicy",
    "SerializationError",
    "Serdes",
    "Step",
    "StepError",
    "StepInterruptedError",
    "StepSemantics",
    "StoreError",
    "ValidationError",
    "VirtualClock",
    "Wait",
    "WaitStrategy",
    "WorkflowDefinitionError",
    "WorkflowFailedError",
    "current_attempt",
    "operation_id",
]
