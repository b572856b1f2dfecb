"""Which runs use a saved dataset, and saving or deleting one without pulling it from under them.

The run store knows which runs read which dataset version; the data room only stores
images. This module joins the two for the Data page and the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnn_core.data import userdata
from cnn_core.data.dataset import USER_PREFIX, Dataset, DatasetError, DatasetUnavailable
from cnn_core.data.datasets import dataset_title
from cnn_core.data.owndata import KEEP_BOTH, NEW, REPLACE
from cnn_core.data.userdata import user_slug
from cnn_core.runs import store


def runs_using(name: str, fingerprint: str | None = None) -> list:
    """The runs (store.RunInfo, newest first) that trained or train on a user dataset.

    Args:
        name: a "user:" key or a slug.
        fingerprint: only runs on this version; None: on any version. Runs made before
            runs recorded a version count as using every version, to be safe.
    """
    key = USER_PREFIX + user_slug(name)
    return [
        r
        for r in store.list_runs()
        if r.config.dataset == key
        and (fingerprint is None or r.config.dataset_fingerprint in (None, fingerprint))
    ]


def run_label(run_info) -> str:
    """The "run id (its name)" of a store.RunInfo, naming the dataset by its title."""
    cfg = run_info.config
    return f"{run_info.id} ({cfg.name or f'{cfg.model} on {dataset_title(cfg.dataset)}'})"


def run_labels(run_infos: list) -> str:
    """run_label of each run, comma-separated, for messages."""
    return ", ".join(run_label(r) for r in run_infos)


@dataclass(frozen=True)
class NameChoice:
    """What saving a dataset under a name would do, so the page can ask before it saves.

    Attributes:
        slug: the name asked for, as it is saved ("My Photos" -> "my-photos").
        existing: the saved dataset of that name, or None when the name is free.
        same_images: that dataset holds these very images (saving changes nothing).
        users: the runs that trained on the saved version ("id (name)"); while there are
            any, it cannot be replaced.
        keep_both_slug: the free name that "keep both" saves the new images under.
    """

    slug: str
    existing: userdata.UserDatasetInfo | None
    same_images: bool
    users: tuple[str, ...]
    keep_both_slug: str

    @property
    def taken(self) -> bool:
        """Another dataset has this name: saving must replace it or keep both."""
        return self.existing is not None and not self.same_images

    @property
    def can_replace(self) -> bool:
        return self.taken and not self.users

    @property
    def options(self) -> tuple[str, ...]:
        """The ways to save that are allowed: NEW alone when the name is free."""
        if not self.taken:
            return (NEW,)
        return (REPLACE, KEEP_BOTH) if self.can_replace else (KEEP_BOTH,)


def name_choice(dataset: Dataset, name: str) -> NameChoice:
    """Whether name is free for dataset, and if not, whether it may be replaced.

    Raises:
        DatasetError: the name has no letter or digit, or the saved file is damaged.
    """
    slug = userdata.user_slug(name)
    try:
        existing = userdata.user_dataset_info(slug)
    except DatasetUnavailable:
        return NameChoice(slug, None, False, (), slug)
    same = existing.fingerprint == userdata.fingerprint(dataset)
    users = runs_using(slug, existing.fingerprint)
    labels = tuple(run_label(r) for r in users)
    return NameChoice(slug, existing, same, labels, userdata.unique_user_name(slug))


def save_import(dataset: Dataset, name: str, how: str) -> str:
    """Save an imported dataset the way the user chose.

    Args:
        dataset: the imported images.
        name: the name asked for.
        how: NEW (the name must be free, or hold these very images), REPLACE (allowed only
            while no run used the saved version) or KEEP_BOTH (saved under name-2, …).

    Returns:
        The registry key it was saved under.

    Raises:
        DatasetExists: NEW, but the name was taken meanwhile; ask again.
        DatasetInUse: REPLACE, but a run used the saved version.
        DatasetError: an unknown how, or a name without a letter or digit.
    """
    if how == KEEP_BOTH:
        return userdata.save_user_dataset_as_new(dataset, name)
    if how in (NEW, REPLACE):
        return save_user_dataset(dataset, name, replace=how == REPLACE)
    raise DatasetError(f"Unknown way to save {how!r}: choose {NEW}, {REPLACE} or {KEEP_BOTH}.")


def delete_dataset(name: str) -> list[str]:
    """Delete a saved user dataset (see userdata.delete_user_dataset).

    Returns:
        "id (name)" of each run that trained on it; their evaluation now says so.
    """
    return [run_label(r) for r in delete_user_dataset(name)]


def save_user_dataset(dataset: Dataset, name: str, *, replace: bool = False) -> str:
    """userdata.save_user_dataset, refusing to replace a version that a run used."""
    return userdata.save_user_dataset(
        dataset,
        name,
        replace=replace,
        users_of=lambda key, fingerprint: [run_label(r) for r in runs_using(key, fingerprint)],
    )


def delete_user_dataset(name: str) -> list:
    """userdata.delete_user_dataset, refused while a run on it is queued or running.

    Returns:
        The runs (store.RunInfo) that trained on it: their evaluation now says the images
        are gone.
    """
    users: list = []

    def active_users_of(key: str) -> list[str]:  # asked once, under the data room's lock
        users.extend(runs_using(key))
        return [run_label(r) for r in users if r.status.active]

    userdata.delete_user_dataset(name, active_users_of=active_users_of)
    return users
