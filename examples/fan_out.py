"""Fan out over inventory sources with Map; done once enough of them answered.

Each item queries one warehouse (a step that fails for warehouses that are down).
The completion policy stops the batch once 3 warehouses answered, tolerating up
to 2 failures; at most 4 queries run at once.

Run it:
    durable-gen run examples/fan_out.py:stock_check --input '{"sku": "B-42"}'
"""

from durable_gen import CompletionPolicy, Map, RetryPolicy, Step, Workflow

WAREHOUSES = ["ams", "ber", "cdg", "dub", "fra", "lhr", "mad", "zrh"]
DOWN = {"ber", "fra"}


def query(warehouse: str, sku: str) -> int:
    if warehouse in DOWN:
        raise ConnectionError(f"{warehouse} is down")
    return len(warehouse + sku)  # stands for a stock count


def check_one(warehouse: str, index: int, sku: str) -> Workflow[dict[str, str | int]]:
    count = yield from Step(
        query, warehouse, sku, name=f"query-{warehouse}", retry=RetryPolicy.none()
    )
    return {"warehouse": warehouse, "count": count}


def stock_check(event: dict[str, str]) -> Workflow[dict[str, object]]:
    sku = event["sku"]
    result = yield from Map(
        WAREHOUSES,
        lambda warehouse, index: check_one(warehouse, index, sku),
        name="warehouses",
        max_concurrency=4,
        completion=CompletionPolicy(min_successful=3, tolerated_failure_count=2),
        item_namer=lambda warehouse, index: warehouse,
    )
    answers = result.get_results()
    return {
        "sku": sku,
        "answers": answers,
        "failed": result.failure_count,
        "reason": result.completion_reason.value,
    }
