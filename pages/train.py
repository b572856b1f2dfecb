"""Train: start, stop and resume runs, watch them learn live, and compare them."""

import zlib

import pandas as pd
import streamlit as st

from cnn_core import settings
from cnn_core.data import datasets
from cnn_core.data.dataset import Dataset
from cnn_core.explain import plots
from cnn_core.models import input_limits, layer_lists, summaries, zoo
from cnn_core.runs import (
    estimates,
    history,
    jobs,
    metrics_log,
    presets,
    run_config,
    run_folder,
    runboard,
    sharing,
    store,
)
from cnn_core.runs import status as run_status
from pages import _session as session
from pages._shared import load_chosen_dataset

POLL_S = 1.0  # while a run is active
IDLE_POLL_S = 5.0  # otherwise: a run started in another tab or by another learner shows up
DEFAULT_VALIDATION = run_config.RunConfig.validation_split
PRECISIONS = {  # the Arithmetic choice -> RunConfig.mixed_precision
    f"auto ({'bfloat16' if settings.fast_bfloat16() else 'float32'} on this CPU)": None,
    "float32": False,
    "bfloat16 (mixed)": True,
}
STATE_ICONS = {
    "queued": ":material/schedule:", "running": ":material/play_circle:",
    "stopping": ":material/pause_circle:", "finished": ":material/check_circle:",
    "stopped": ":material/stop_circle:", "failed": ":material/error:",
    "interrupted": ":material/warning:",
}  # fmt: skip
LAYER_COLUMNS = [
    "type",
    "filters",
    "kernel",
    "stride",
    "padding",
    "activation",
    "size",
    "rate",
    "units",
]

dataset = session.current_dataset()
st.title("Train")


@st.cache_data(show_spinner="Building the model…", max_entries=32)
def model_summary(name: str, input_shape: tuple, num_classes: int) -> tuple[list[dict], int]:
    summary = summaries.summarize(zoo.build_model(name, input_shape, num_classes))
    return summary.to_records(), summary.total_params


def start(configs, input_shape, train_size) -> bool:
    """Start runs and watch the first. A bad config is shown and nothing is started."""
    try:  # every config is checked before any worker starts
        started = jobs.start_runs(configs, train_size=train_size, input_shape=input_shape)
    except (run_config.ConfigError, run_folder.RunError) as exc:
        st.error(str(exc))
        return False
    st.session_state[session.TRAIN_RUN_ID] = started[0]
    st.session_state[session.TRAIN_COMPARE] = started if len(started) > 1 else []
    return True


# ---------------------------------------------------------------- the run being watched


def history_for(run_id: str) -> history.LiveHistory:
    cache = st.session_state.setdefault(session.TRAIN_HISTORIES, {})
    if run_id not in cache:
        cache[run_id] = history.LiveHistory(run_id)
    return cache[run_id]


def line_chart(frame: pd.DataFrame, height: int = 220) -> None:
    if frame.empty:
        st.caption("Waiting for the first figures…")
    else:
        st.line_chart(frame, height=height)


def epoch_chart(frame: pd.DataFrame, metric: str, height: int = 220) -> None:
    """Per-epoch values as points joined by lines: one epoch is already a point to read."""
    if frame.empty:
        st.caption("Waiting for the end of the first epoch…")
        return
    spec = history.curve_spec(frame, metric, whole_epochs=True)
    st.vega_lite_chart({**spec, "height": height}, width="stretch")


def charts(records: list[dict], status: run_status.RunStatus) -> None:
    cols = st.columns(2)
    for col, metric in zip(cols, history.CURVES, strict=True):
        with col:
            st.markdown(f"**{metric.capitalize()}** — every few batches (training data)")
            line_chart(history.batch_frame(records, metric, status.batches_per_epoch))
            st.markdown(f"**{metric.capitalize()}** — per epoch")
            epoch_chart(history.epoch_frame(records, metric), metric)


@st.cache_data(max_entries=8, show_spinner=False)
def shared_zip(run_id: str) -> bytes:
    """A finished run never changes, so its export is built once."""
    return sharing.export_run(run_id)


def rename_and_delete(run_id: str, row: runboard.RunRow) -> None:
    rename_col, delete_col, _ = st.columns([1, 1, 4])
    with rename_col.popover("Rename", icon=":material/edit:"):
        new_name = st.text_input("Name", value=row.name, key=f"name-{run_id}",
                                 max_chars=run_config.MAX_NAME_LENGTH)  # fmt: skip
        if st.button("Save the name", key=f"rename-{run_id}"):
            try:
                store.rename_run(run_id, new_name)
            except run_folder.RunError as exc:
                st.error(str(exc))
            else:
                st.rerun(scope="app")
    if row.active:
        return  # a run is stopped before it can be deleted
    with delete_col.popover("Delete", icon=":material/delete:"):
        st.markdown(f"Delete **{row.name}**: its weights, checkpoints and curves? This cannot "
                    "be undone.")  # fmt: skip
        if st.button("Delete this run", key=f"delete-{run_id}", type="primary"):
            try:
                store.delete_run(run_id)
            except run_folder.RunError as exc:
                st.error(str(exc))
            else:
                st.session_state.pop(session.TRAIN_RUN_ID, None)
                st.rerun(scope="app")


def run_actions(run_id: str, status: run_status.RunStatus) -> None:
    cols = st.columns(4)
    if status.active and cols[0].button("Stop", icon=":material/stop:", key=f"stop-{run_id}"):
        jobs.stop_run(run_id)
        st.rerun()
    if status.state in run_status.RESUMABLE_STATES and cols[0].button(
        "Resume", icon=":material/play_arrow:", key=f"resume-{run_id}"
    ):
        try:
            jobs.resume_run(run_id)
        except run_folder.RunError as exc:
            st.error(str(exc))
        st.rerun(scope="app")
    paths = run_folder.run_paths(run_id)
    if not status.active:
        csv = metrics_log.metrics_csv(run_id)
        cols[1].download_button("Metrics (CSV)", csv, f"{run_id}-metrics.csv", "text/csv",
                                key=f"csv-{run_id}")  # fmt: skip
        if paths.model.is_file():
            cols[2].download_button("Model (.keras)", paths.model.read_bytes(), f"{run_id}.keras",
                                    key=f"model-{run_id}")  # fmt: skip
            if status.state == "finished":
                cols[2].download_button(
                    "Share (weights + config)", shared_zip(run_id), f"{run_id}.cnnlab.zip",
                    "application/zip", key=f"share-{run_id}",
                    help="For another CNN Lab: import it under Runs on this machine.",
                )  # fmt: skip
        with cols[3].popover("Charts (PNG)", icon=":material/download:"):
            records = metrics_log.epoch_records(history_for(run_id).records)
            for metric in history.CURVES:
                png = plots.figure_png(plots.history_figure(records, metric, title=metric))
                st.download_button(f"{metric} per epoch", png, f"{run_id}-{metric}.png",
                                   "image/png", key=f"png-{metric}-{run_id}")  # fmt: skip


def watched_run(row: runboard.RunRow) -> None:
    """The live panel of one run, drawn from the same reading of the run store as the table."""
    run_id, now = row.id, row.status
    records = history_for(run_id).refresh(now)
    st.subheader(row.name)
    icon = STATE_ICONS.get(row.state, "")
    # A queued run's place comes from the board; its worker's message only repeats "waiting".
    message = "" if row.state == "queued" else now.message
    st.markdown(f"{icon} **{row.state_text}** {message}".strip())
    share, text = runboard.progress(now)
    st.progress(share, text=text)
    charts(records, now)
    evaluation = store.read_evaluation(run_id)
    if evaluation:  # a shared run's evaluation may lack a figure: "—", never a traceback
        accuracy = runboard.fmt_percent(evaluation.get("accuracy"))
        st.success(
            f"Test accuracy {accuracy}, test loss {runboard.fmt(evaluation.get('loss'), '.4f')}."
        )
    run_actions(run_id, now)
    rename_and_delete(run_id, row)


# ---------------------------------------------------------------- starting a run


def layer_editor(input_shape: tuple, num_classes: int) -> list[dict] | None:
    """The custom layer list, edited as a table; shapes and parameters update as you edit."""
    st.caption("Add, remove or change rows. A final dense softmax layer is added for you.")
    start_rows = (
        st.session_state.get(session.TRAIN_CUSTOM_LAYERS) or layer_lists.default_custom_layers()
    )
    frame = pd.DataFrame(start_rows, columns=LAYER_COLUMNS)
    edited = st.data_editor(
        frame, num_rows="dynamic", key=session.TRAIN_LAYER_EDITOR, hide_index=True,
        column_config={
            "type": st.column_config.SelectboxColumn(
                options=list(layer_lists.LAYER_TYPES), required=True
            ),
            "padding": st.column_config.SelectboxColumn(options=list(layer_lists.PADDINGS)),
            "activation": st.column_config.SelectboxColumn(options=list(layer_lists.ACTIVATIONS)),
        },
    )  # fmt: skip
    layers = layer_lists.layers_from_table(edited.to_dict("records"))
    try:
        shapes = layer_lists.validate_layers(layers, input_shape, num_classes)
    except input_limits.ModelError as exc:
        st.error(str(exc))
        return None
    table = pd.DataFrame([{"layer": s.label, "output shape": summaries.format_shape(s.output_shape),
                           "parameters": s.params} for s in shapes])  # fmt: skip
    st.dataframe(table, hide_index=True)
    st.caption(f"{sum(s.params for s in shapes):,} parameters in all.")
    return layers


def new_run_form(ds: Dataset) -> None:
    input_shape, train_size = ds.input_shape, len(ds.y_train)
    keys = [m.key for m in zoo.list_models()]
    model = st.selectbox(
        "Model", keys, key="train_model", format_func=lambda k: zoo.MODELS[k].title
    )
    info = zoo.MODELS[model]
    st.caption(f"{info.description} {info.citation}".strip())
    layers = None
    if model == layer_lists.CUSTOM:
        layers = layer_editor(input_shape, ds.num_classes)
        if layers is None:
            return
    else:
        try:
            records, total = model_summary(model, input_shape, ds.num_classes)
        except input_limits.ModelError as exc:
            st.error(str(exc))
            return
        with st.expander(f"Layers: {total:,} parameters"):
            st.dataframe(pd.DataFrame(records), hide_index=True)
        trained_images = int(train_size * (1 - DEFAULT_VALIDATION))
        estimate = estimates.epoch_estimate(model, dataset, input_shape, trained_images)
        st.caption(
            f"Time: {estimate.text()}." if estimate
            else "No time measurement for this model and image size yet: the first epoch "
            "of a run tells."
        )  # fmt: skip
    with st.form("new_run", enter_to_submit=False):  # only the button starts a run
        c1, c2, c3 = st.columns(3)
        optimizer = c1.selectbox(
            "Optimizer",
            list(run_config.OPTIMIZERS),
            index=list(run_config.OPTIMIZERS).index(info.optimizer),
            help="How each step changes the weights. sgd: straight down the slope, with "
            "momentum (each step keeps 90% of the last one). nesterov: the same, looking "
            "one step ahead, and shrinking every weight a little each step (weight decay): "
            "the fast CIFAR-10 recipes use it, at rates near 0.1. adam and adamax: a step "
            "size of its own for every weight, at rates near 0.001; adamw adds the "
            "weight decay.",
        )
        learning_rate = c1.number_input(
            "Learning rate",
            value=float(info.learning_rate),
            format="%.5f",
            min_value=0.0,
            step=0.0005,
        )
        schedule = c1.selectbox(
            "Schedule", list(run_config.LR_SCHEDULES),
            help="constant: the same learning rate throughout. cosine: falls smoothly to 0 "
            "by the last step, so the last epochs settle. warmup_cosine: first climbs from "
            "a fifth of the rate over the first fifth of the steps, which a high rate "
            "on untrained weights needs.",
        )  # fmt: skip
        sizes = [16, 32, 64, 128, 256, 512]
        # The default, but never more than the images a default validation split leaves.
        fits = [b for b in sizes if b <= train_size * (1 - DEFAULT_VALIDATION)] or sizes[:1]
        batch_size = c2.select_slider(
            "Batch size", sizes, value=min(run_config.RunConfig.batch_size, fits[-1])
        )
        epochs = c2.number_input("Epochs", min_value=1, max_value=run_config.MAX_EPOCHS, value=5)
        validation = c2.slider("Validation share", 0.0, 0.4, DEFAULT_VALIDATION, 0.05)
        smoothing = c2.slider(
            "Label smoothing", 0.0, 0.3, 0.0, 0.05, key="train_label_smoothing",
            help="Trains toward 91% on the true class instead of 100% (at 0.1, with ten "
            "classes; the rest is shared by the others): a network that is never told to be "
            "certain over-fits a small training set less.",
        )  # fmt: skip
        shift = c3.slider("Random shift (share of size)", 0.0, 0.3, 0.0, 0.02)
        rotate = c3.slider("Random rotation (degrees)", 0, 30, 0)
        zoom = c3.slider("Random zoom (share of size)", 0.0, 0.3, 0.0, 0.02, key="train_zoom")
        flip = c3.checkbox("Random left-right flips (photos, not digits)")
        seed = c3.number_input(
            "Random seed", min_value=0, value=42,
            help="Sets the random starting weights, shuffles and augmentations: the same "
            "seed and settings train the same network again.",
        )  # fmt: skip
        precision = c3.selectbox(
            "Arithmetic", list(PRECISIONS), help="bfloat16 keeps float32 weights but computes "
            "in 16 bits: about 1.7× faster on CPUs with AMX or AVX512_BF16, same accuracy.",
        )  # fmt: skip
        submitted = st.form_submit_button(
            "Start training", icon=":material/play_arrow:", type="primary"
        )
    if submitted:
        cfg = run_config.RunConfig(
            dataset=dataset, model=model, layers=layers, optimizer=optimizer,
            learning_rate=float(learning_rate), batch_size=int(batch_size), epochs=int(epochs),
            validation_split=float(validation), lr_schedule=schedule, augment_shift=float(shift),
            augment_rotate=float(rotate), augment_zoom=float(zoom), augment_flip=bool(flip),
            label_smoothing=float(smoothing), seed=int(seed),
            mixed_precision=PRECISIONS[precision],
        )  # fmt: skip
        st.session_state[session.TRAIN_CUSTOM_LAYERS] = layers
        if start([cfg], input_shape, train_size):
            st.rerun()


def preset_measurement(key: str) -> str:
    rows = presets.measured(key)
    if not rows:
        return "Not measured on this kind of machine yet (benchmarks/presets.py)."
    runs_text = "; ".join(
        f"{r['name']}: {r['test_accuracy']:.2%} after {r['epochs']} epochs in "
        f"{runboard.fmt_duration(r['seconds'])}"
        for r in rows
    )
    return f"Measured on this kind of machine ({rows[0]['measured']}): {runs_text}."


def preset_buttons(ds: Dataset) -> None:
    for preset in presets.presets_for(dataset):
        with st.container(border=True):
            st.markdown(f"**{preset.title}**  \n{preset.lesson}  \n*Target: {preset.target}*")
            st.caption(preset_measurement(preset.key))
            clicked = st.button("Start", key=f"preset-{preset.key}", icon=":material/play_arrow:")
            if clicked and start(preset.configs, ds.input_shape, len(ds.y_train)):
                st.rerun()


# ---------------------------------------------------------------- all runs


def runs_table(rows: list[runboard.RunRow]) -> None:
    st.subheader("Runs on this machine")
    if not rows:
        st.caption("No runs yet on this machine.")
        return
    table = pd.DataFrame([runboard.table_record(r) for r in rows], columns=runboard.TABLE_COLUMNS)
    st.caption("Select a row to watch that run; select several to compare them.")
    # The table redraws itself while runs train, and a selection is kept as row positions:
    # when a run is added or deleted the rows shift, so the selection starts afresh rather
    # than silently pointing at a neighbour.
    listing = zlib.crc32(",".join(r.id for r in rows).encode())
    event = st.dataframe(
        table, hide_index=True, on_select="rerun", selection_mode="multi-row",
        key=f"runs_table-{listing}",
        column_config={"name": st.column_config.TextColumn(width="medium")},
    )  # fmt: skip
    chosen = [rows[i].id for i in event.selection.rows if i < len(rows)]
    if chosen and chosen[0] != st.session_state.get(session.TRAIN_RUN_ID):
        st.session_state[session.TRAIN_RUN_ID] = chosen[0]
        st.rerun(scope="app")
    compare = chosen if len(chosen) > 1 else st.session_state.get(session.TRAIN_COMPARE, [])
    known = {r.id: r for r in rows}
    compare = [run_id for run_id in compare if run_id in known]
    if len(compare) > 1:
        # Names can repeat (a learner's rename): the legend must still tell the runs apart.
        labels = {r: known[r].name for r in compare}
        if len(set(labels.values())) < len(labels):
            labels = {r: f"{name} ({r})" for r, name in labels.items()}
        histories = {labels[r]: metrics_log.read_metrics(r)[0] for r in compare}
        st.markdown(
            "**Validation accuracy per epoch** (training accuracy where no validation was held out)"
        )
        epoch_chart(history.overlay_frame(histories, "accuracy"), "accuracy", height=260)
        st.markdown("**Validation loss per epoch**")
        epoch_chart(history.overlay_frame(histories, "loss"), "loss", height=260)


def watched_id(rows: list[runboard.RunRow]) -> str | None:
    """The run this session watches; a new session (a second tab, another learner) follows
    the run that is training now, else the next queued one."""
    known = {r.id for r in rows}
    if st.session_state.get(session.TRAIN_RUN_ID) in known:
        return st.session_state[session.TRAIN_RUN_ID]
    st.session_state.pop(session.TRAIN_RUN_ID, None)
    for states in (runboard.TRAINING_STATES, ("queued",)):
        for r in rows:
            if r.state in states:
                st.session_state[session.TRAIN_RUN_ID] = r.id
                return r.id
    return None


def runs_area(any_active: bool) -> None:
    """The watched run and the runs table, redrawn together from one reading of the store,
    so they can never disagree; polls quickly while a run is active."""

    @st.fragment(run_every=POLL_S if any_active else IDLE_POLL_S)
    def area() -> None:
        rows = runboard.board()
        if any(r.active for r in rows) != any_active:
            st.rerun(scope="app")  # a run started or ended: poll at the other pace
        run_id = watched_id(rows)
        if run_id is not None:
            watched_run(runboard.row(run_id, rows))
        runs_table(rows)

    area()


# ---------------------------------------------------------------- the page

problem = store.runs_home_problem()
if problem:
    st.error(problem)
    st.stop()

runs_area(any(r.active for r in runboard.board()))

ds = load_chosen_dataset(dataset)
if ds is not None:
    new_tab, preset_tab = st.tabs(["New run", "Presets"])
    with new_tab:
        new_run_form(ds)
    with preset_tab:
        if presets.presets_for(dataset):
            preset_buttons(ds)
        else:
            st.caption(f"No presets for {datasets.dataset_title(dataset)}.")

with st.expander("Import a run shared from another CNN Lab"):
    st.caption(
        "A shared run holds the lab's own description of the model and its weights only; "
        "the model is rebuilt here, so no code from the file is ever run."
    )
    shared = st.file_uploader("Shared run (.cnnlab.zip)", type=["zip"], key="import_run")
    if shared is not None and st.button("Import", key="import_button"):
        try:
            imported = sharing.import_run(shared.getvalue())
        except (sharing.SharingError, run_folder.RunError) as exc:
            st.error(str(exc))
        else:
            st.session_state[session.TRAIN_RUN_ID] = imported
            st.success(
                "Imported: it is now listed above and on the Predict, Inspect and Evaluate pages."
            )
