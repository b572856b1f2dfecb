"""Data: samples, class balance and statistics of the chosen dataset; import your own images."""

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from cnn_core import datasets, owndata
from lab_pages._shared import cached_dataset, load_chosen_dataset, pixel_image

GRID_SIZE = 24
GRID_COLUMNS = 8

name = st.session_state.get("dataset", "mnist")
st.title(f"Data: {datasets.dataset_title(name)}")

with st.expander("Where this dataset comes from", expanded=not datasets.is_available(name)):
    for status in datasets.dataset_status(name):
        mark = "✅" if status.available else "⬜"
        st.markdown(f"{mark} **{status.source}**: {status.description}  \n`{status.detail}`")
    if not name.startswith(datasets.USER_PREFIX):
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
                cached_dataset.clear()
                st.success("Downloaded. The lab now uses it.")
            except datasets.DatasetError as exc:
                st.error(str(exc))
            finally:
                bar.empty()

ds = load_chosen_dataset(name)
if ds is not None:
    st.info(f"In use: **{ds.title}**: {ds.source_description}.")
    stats = datasets.dataset_stats(ds)
    h, w, c = stats.image_shape
    cols = st.columns(4)
    cols[0].metric(
        "Image size", f"{h}×{w}", f"{c} channel{'s' if c > 1 else ''}", delta_color="off"
    )
    cols[1].metric("Training images", f"{stats.train_count:,}")
    cols[2].metric("Test images", f"{stats.test_count:,}")
    cols[3].metric("Pixel mean ± std", f"{stats.pixel_mean:.1f} ± {stats.pixel_std:.1f}")

    st.subheader("Random training samples")
    if st.button("Reshuffle", icon=":material/shuffle:", key="reshuffle"):
        st.session_state["sample_seed"] = st.session_state.get("sample_seed", 0) + 1
    picks = datasets.sample_indices(ds, GRID_SIZE, st.session_state.get("sample_seed", 0))
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

st.divider()
st.subheader("Your own images")
st.markdown(
    "Upload a **zip of class folders** (`cats/…`, `dogs/…`), each holding PNG, JPEG, GIF, BMP "
    "or WebP images. Every image is centre-cropped to a square and resized."
)
with st.form("import", enter_to_submit=False):
    upload = st.file_uploader("Zip of class folders", type=["zip"])
    new_name = st.text_input("Dataset name", value="my-images")
    size = st.select_slider("Image size", options=[16, 24, 28, 32, 48, 64], value=32)
    gray = st.checkbox("Grayscale", value=False)
    submitted = st.form_submit_button("Import")
if submitted:
    if upload is None:
        st.error("Choose a zip file first.")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload.zip"
            path.write_bytes(upload.getvalue())
            try:
                imported, report = owndata.import_images(
                    path, new_name, image_size=size, grayscale=gray
                )
                key = datasets.save_user_dataset(imported, new_name)
            except datasets.DatasetError as exc:
                st.error(str(exc))
            else:
                st.success(
                    f"Imported {sum(report.class_counts.values()):,} images in "
                    f"{len(report.class_counts)} classes as **{datasets.dataset_title(key)}**; "
                    "choose it in the sidebar."
                )
                st.dataframe(
                    pd.DataFrame(report.class_counts.items(), columns=["class", "images"]),
                    hide_index=True,
                )
                if report.skipped:
                    st.warning(f"Skipped {len(report.skipped)} file(s):")
                    st.dataframe(
                        pd.DataFrame(report.skipped, columns=["file", "why"]), hide_index=True
                    )
