from __future__ import annotations

import factory

from provenance.models import Dataset, RightsHolder, User


class RightsHolderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RightsHolder

    name = factory.Sequence(lambda n: f"Holder {n}")
    contact_email = factory.LazyAttribute(
        lambda o: f"rights@{o.name.replace(' ', '').lower()}.test")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    role = User.Role.RESEARCHER
    @factory.post_generation
    def password(obj, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        obj.set_password(extracted or "pw")
        if create:
            obj.save(update_fields=["password"])


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset

    slug = factory.Sequence(lambda n: f"dataset-{n}")
    title = factory.LazyAttribute(lambda o: o.slug.title())
