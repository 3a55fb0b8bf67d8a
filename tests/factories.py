from __future__ import annotations

import factory

from provenance.models import Dataset, RightsHolder, User


class RightsHolderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RightsHolder

    name = factory.Sequence(lambda n: f"Holder {n}")
    contact_email = factory.LazyAttribute(lambda o: f"rights@{o.name.replace(' ', '').lower()}.test")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    role = User.Role.RESEARCHER
    password = factory.PostGenerationMethodCall("set_password", "pw")


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset

    slug = factory.Sequence(lambda n: f"dataset-{n}")
    title = factory.LazyAttribute(lambda o: o.slug.title())
