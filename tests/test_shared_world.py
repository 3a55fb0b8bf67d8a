"""The shared world (tests/fixtures/shared_world.py) is shared, and what a test writes in it is
gone before the next test: the matrices and the fuzzer rely on both."""

import pytest

from provenance.models import DataSource, RightsHolder
from tests.factories import RightsHolderFactory
from tests.fixtures.shared_world import (  # noqa: F401
    artifacts_in_shared_folder,
    holder_a,
    holder_b,
    provenance_world,
    shared_objects,
    shared_state,
    users,
    world,
)

pytestmark = pytest.mark.django_db
SEEN: list[int] = []


def test_a_test_writes_into_the_shared_world(world, users):
    SEEN.append(world["sa"])
    RightsHolderFactory(name="written by one test")
    DataSource.objects.filter(pk=world["sa"]).update(description="changed by one test")
    users["curator"].username = "renamed in memory"


def test_the_next_test_sees_the_same_world_and_none_of_those_writes(world, users):
    assert SEEN == [world["sa"]]  # the same objects, not a new world
    assert not RightsHolder.objects.filter(name="written by one test").exists()
    assert DataSource.objects.get(pk=world["sa"]).description == ""
    assert users["curator"].username == "curator"
