"""Look a customer up in three regions at once; done when two of them agree.

Shows the options AWS's SDK users know, spelled the durable_gen way:
- named parallel branches (``ParallelBranch``), recorded under their names;
- a custom completion predicate (``should_complete``) deciding on the branches'
  progress: complete as soon as two regions answered, or failed once two failed;
- a virtual child context that groups the lookups without a record of its own;
- a custom ``sub_type`` labelling the steps of this "lookup" operation.

Run it:
    durable-gen run examples/quorum_lookup.py:quorum_lookup --input '{"customer": "c-7"}'
    durable-gen show <the id it printed>
"""

from durable_gen import (
    ChildContext,
    CompletionDecision,
    CompletionOutcome,
    CompletionPolicy,
    CompletionStatus,
    Parallel,
    ParallelBranch,
    RetryPolicy,
    Step,
    Workflow,
    complete_batch,
    continue_batch,
)

REGIONS = ["eu-west-1", "us-east-1", "ap-south-1"]
DOWN = {"ap-south-1"}


def fetch(region: str, customer: str) -> dict[str, str]:
    if region in DOWN:
        raise ConnectionError(f"{region} does not answer")
    return {"customer": customer, "tier": "gold"}  # stands for a regional replica's row


def two_agree(status: CompletionStatus) -> CompletionDecision:
    if status.success_count >= 2:
        return complete_batch()
    if status.failure_count >= 2:
        return complete_batch(CompletionOutcome.FAILED)
    return continue_batch()


def lookup_in(region: str, customer: str) -> ParallelBranch:
    def branch() -> Workflow[dict[str, str]]:
        return (
            yield from Step(
                fetch,
                region,
                customer,
                name=f"fetch-{region}",
                retry=RetryPolicy.none(),
                sub_type="Lookup",
            )
        )

    return ParallelBranch(branch, name=region)


def lookups(customer: str) -> Workflow[dict[str, object]]:
    result = yield from Parallel(
        [lookup_in(region, customer) for region in REGIONS],
        name="regions",
        max_concurrency=1,
        completion=CompletionPolicy(should_complete=two_agree),
    )
    if result.status.value == "FAILED":
        result.throw_if_error()  # two regions failed: no quorum
    return {"answers": result.get_results(), "reason": str(result.completion_reason)}


def quorum_lookup(event: dict[str, str]) -> Workflow[dict[str, object]]:
    found: dict[str, object] = yield ChildContext(
        lookups, event["customer"], name="lookup", virtual=True
    )
    return {"customer": event["customer"], **found}
