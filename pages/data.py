"""Data: samples, class balance and statistics of the chosen dataset; import your own images."""

import datetime

import pandas as pd
import streamlit as st

from cnn_core.data import datasets, owndata, userdata
from cnn_core.data.dataset import USER_PREFIX, DatasetError, DatasetExists
from cnn_core.runs import dataset_use
from pages import _session as session
from pages._shared import load_chosen_dataset, pixel_image

GRID_SIZE = 24
GRID_COLUMNS = 8
PENDING = session.DATA_PENDING  # an import that waits for "replace or keep both"

name = session.current_dataset()
st.title(f"Data: {datasets.dataset_title(name)}")


def show_flash() -> None:
    """The outcome of a save or a delete, kept across the rerun that refreshed the sidebar."""
    flash = session.pop_flash()
    if flash is None:
        return
    kind, message, tables = flash
    getattr(st, kind)(message)
    for caption, frame in tables:
        if caption:
            st.warning(caption)
        st.dataframe(frame, hide_index=True)


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "before import times were kept"
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def own_dataset_panel(key: str) -> None:
    """The facts of a saved own dataset, and its Delete button."""
    try:
        info = userdata.user_dataset_info(key)
    except DatasetError:
        return  # load_chosen_dataset has said what is wrong
    users = dataset_use.runs_using(key)
    st.caption(
        f"Imported {when(info.imported)}; version {info.fingerprint[:12]} "
        f"(a fingerprint of its images, recorded by every run trained on it)."
    )
    with st.expander("Delete this dataset"):
        if users:
            st.markdown(
                f"{len(users)} run(s) trained on it: {dataset_use.run_labels(users)}. They keep "
                "their results, but their evaluation and test gallery will say that the "
                "images are gone."
            )
        else:
            st.markdown("No run trained on it.")
        if st.button(f"Delete {info.title}", key="delete_dataset", type="primary"):
            try:
                used = dataset_use.delete_dataset(key)
            except DatasetError as exc:
                st.error(str(exc))
            else:
                note = f" Runs that trained on it: {', '.join(used)}." if used else ""
                session.set_flash("success", f"Deleted {info.title}.{note}", [])
                st.rerun()


def provenance(name: str) -> None:
    """Which sources of the dataset are ready, and the download of a built-in one."""
    with st.expander("Where this dataset comes from", expanded=not datasets.is_available(name)):
        for status in datasets.dataset_status(name):
            mark = "✅" if status.available else "⬜"
            st.markdown(f"{mark} **{status.source}**: {status.description}  \n`{status.detail}`")
        if name.startswith(USER_PREFIX):
            return
        st.caption(
            f"Download the official files (needs internet): `{datasets.download_hint(name)}`"
        )
        if st.button("Download now", key="download"):
            bar = st.progress(0.0, text="Connecting…")

            def show(done: int, total: int | None) -> None:
                share = min(done / total, 1.0) if total else 0.0
                bar.progress(share, text=f"{done / 2**20:,.1f} MB downloaded")

            try:
                datasets.download_dataset(name, progress=show)
                # No cache to clear: the cached copy is keyed by the source in use.
                st.success("Downloaded. The lab now uses it.")
            except DatasetError as exc:
                st.error(str(exc))
            finally:
                bar.empty()


def dataset_view(name: str) -> None:
    ds = load_chosen_dataset(name)
    if ds is None:
        return
    st.info(f"In use: **{ds.title}**: {ds.source_description}.")
    if name.startswith(USER_PREFIX):
        own_dataset_panel(name)
    stats = datasets.dataset_stats(ds)
    h, w, c = stats.image_shape
    cols = st.columns(4)
    cols[0].metric("Image size", f"{h}×{w}", help=f"{c} channel{'s' if c > 1 else ''} per pixel")
    cols[1].metric("Training images", f"{stats.train_count:,}")
    cols[2].metric("Test images", f"{stats.test_count:,}")
    cols[3].metric("Pixel mean ± std", f"{stats.pixel_mean:.1f} ± {stats.pixel_std:.1f}")

    st.subheader("Random training samples")
    if st.button("Reshuffle", icon=":material/shuffle:", key="reshuffle"):
        session.next_seed(session.DATA_SAMPLE_SEED)
    picks = datasets.sample_indices(ds, GRID_SIZE, session.seed(session.DATA_SAMPLE_SEED))
    grid = st.columns(GRID_COLUMNS)
    for slot, index in enumerate(picks):
        grid[slot % GRID_COLUMNS].image(
            pixel_image(ds.x_train[index]), caption=ds.class_names[ds.y_train[index]]
        )

    st.subheader("Images per class")
    st.caption(
        "A balanced dataset has bars of about the same height; "
        "a model learns little of a rare class."
    )
    counts = pd.DataFrame(
        {"train": stats.train_per_class, "test": stats.test_per_class},
        index=pd.Index(ds.class_names, name="class"),
    )
    st.bar_chart(counts, stack=True)


def save_pending(how: str) -> None:
    """Saves the waiting import the chosen way; the outcome is shown after a rerun, so the
    sidebar lists the new dataset."""
    dataset, report, wanted, note = st.session_state[PENDING]
    try:
        key = dataset_use.save_import(dataset, wanted, how)
    except DatasetExists:
        st.rerun()  # taken meanwhile (another learner): the page asks again
    except DatasetError as exc:
        st.error(str(exc))
        return
    del st.session_state[PENDING]
    counts = pd.DataFrame(report.class_counts.items(), columns=["class", "images"])
    tables = [("", counts)]
    if report.skipped:
        skipped = pd.DataFrame(report.skipped, columns=["file", "why"])
        tables.append((f"Skipped {len(report.skipped)} file(s):", skipped))
    message = (
        f"Imported {sum(report.class_counts.values()):,} images in "
        f"{len(report.class_counts)} classes as **{datasets.dataset_title(key)}**{note}; "
        "choose it in the sidebar."
    )
    session.set_flash("success", message, tables)
    st.rerun()


def ask_how_to_save() -> None:
    """The name of a waiting import is taken: replace it (when no run used it) or keep both."""
    dataset, _, wanted, _ = st.session_state[PENDING]
    try:
        choice = dataset_use.name_choice(dataset, wanted)
    except DatasetError as exc:
        st.error(str(exc))
        del st.session_state[PENDING]
        return
    if not choice.taken:
        if choice.same_images:  # the same zip again: say so rather than "imported"
            st.session_state[PENDING] = (*st.session_state[PENDING][:3], " (already saved)")
        save_pending(owndata.NEW)
        return
    old = choice.existing
    st.warning(
        f"A dataset named **{choice.slug}** already exists: "
        f"{old.train_count + old.test_count:,} images in {len(old.class_names)} classes, "
        f"imported {when(old.imported)}. What should happen to the new images?"
    )
    if not choice.can_replace:
        st.info(
            f"It cannot be replaced: {len(choice.users)} run(s) trained on it "
            f"({', '.join(choice.users)}), and their evaluation needs those images."
        )
    labels = {
        owndata.REPLACE: f"Replace {choice.slug}",
        owndata.KEEP_BOTH: f"Keep both: save the new images as {choice.keep_both_slug}",
    }
    how = st.radio("Save the new images", choice.options, format_func=labels.get, key="import_how")
    left, right = st.columns(2)
    if left.button("Save", key="import_save", type="primary"):
        save_pending(how)
    if right.button("Cancel", key="import_cancel"):
        del st.session_state[PENDING]
        st.rerun()


def import_form() -> None:
    st.markdown(
        "Upload a **zip of class folders** (`cats/…`, `dogs/…`), each holding PNG, JPEG, GIF, "
        "BMP or WebP images. Every image is centre-cropped to a square and resized."
    )
    with st.form("import", enter_to_submit=False):
        upload = st.file_uploader("Zip of class folders", type=["zip"])
        typed = st.text_input(
            "Dataset name",
            placeholder="empty: the zip's file name",
            help="Leave it empty to name the dataset after the zip (cats.zip: cats, or "
            "cats-2 when that name is taken).",
        )
        size = st.select_slider("Image size", options=[16, 24, 28, 32, 48, 64], value=32)
        gray = st.checkbox("Grayscale", value=False)
        submitted = st.form_submit_button("Import", key="import_submit")
    if not submitted:
        return
    if upload is None:
        st.error("Choose a zip file first.")
        return
    st.session_state.pop(PENDING, None)
    try:
        wanted = typed.strip() or owndata.default_name(upload.name)
        imported, report = owndata.import_upload(
            upload.getvalue(), upload.name, wanted, image_size=size, grayscale=gray
        )
    except DatasetError as exc:
        st.error(str(exc))
        return
    if typed.strip():
        st.session_state[PENDING] = (imported, report, wanted, "")
    else:  # a name of our choosing is never asked about: it is free
        st.session_state[PENDING] = (imported, report, wanted, " (named after the zip)")
        save_pending(owndata.KEEP_BOTH)


provenance(name)
dataset_view(name)
st.divider()
st.subheader("Your own images")
show_flash()
import_form()
if PENDING in st.session_state:
    ask_how_to_save()
