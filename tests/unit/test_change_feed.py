import json

import pytest

from release_pipeline.change_feed import ChangeFeedError, parse_changes
from release_pipeline.models import ChangeType

GOOD = {
    "id": "CHG-1",
    "type": "feature",
    "component": "mapper",
    "title": "JSONata",
    "description": "d",
    "breaking": True,
    "merged_at": "2026-11-20T12:00:00+00:00",
}


def feed(*changes) -> str:
    return json.dumps({"changes": list(changes)})


def test_a_good_answer():
    [change] = parse_changes(feed(GOOD))
    assert (change.id, change.type, change.breaking) == ("CHG-1", ChangeType.FEATURE, True)
    assert change.merged_at.tzinfo is not None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "invalid JSON"),
        (json.dumps({"items": []}), 'no "changes" list'),
        (feed({**GOOD, "id": ""}), "change #1, field 'id'"),
        (feed({k: v for k, v in GOOD.items() if k != "id"}), "change #1, field 'id': is required but missing"),
        (feed({k: v for k, v in GOOD.items() if k != "type"}), "change 'CHG-1', field 'type': is required"),
        (feed({**GOOD, "type": "feat"}), "change 'CHG-1', field 'type': unknown change type 'feat'"),
        (
            feed({**GOOD, "merged_at": "2026-11-20T12:00:00"}),
            "field 'merged_at': '2026-11-20T12:00:00' needs a timezone",
        ),
        (feed(GOOD, GOOD), "change 'CHG-1': listed twice"),
        (feed("CHG-9"), "change #1: expected an object"),
    ],
)
def test_malformed_answers_name_the_change_and_field(body, message):
    with pytest.raises(ChangeFeedError, match='refused|invalid JSON|no "changes"') as caught:
        parse_changes(body)
    assert message in str(caught.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ChangeFeedError) as caught:
        parse_changes(feed({**GOOD, "type": "bug"}, {**GOOD, "id": "CHG-2", "title": ""}))
    assert "'CHG-1', field 'type'" in str(caught.value) and "'CHG-2', field 'title'" in str(caught.value)
