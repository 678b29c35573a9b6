"""The dashboard's one bridge to ``core``: every cache, and the selection shared by pages.

Caching at the edge, by kind:

- ``st.cache_resource`` (one shared object per process, never mutated): read-only DuckDB
  connections, the item matrix, fitted recommenders/explainers/detectors, and the big
  trajectory arrays (tens of MB: ``st.cache_data`` would copy them on every rerun);
- ``st.cache_data`` (a copy per call): query results, one user's frames, projections.

Every cached function takes the dataset's ``version`` (its content version, from
``core.artefacts``), so a re-imported dataset is re-read instead of served stale. Pages
never encode text or fit UMAP as a side effect of a request: both are set-up steps
(``python -m core encode``/``project``); encoding also runs from an explicit button or
right after an upload, with a progress bar. A page that lacks them says which command
makes them.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import streamlit as st

from core import store
from core.errors import ShiftError

DEFAULT_DATASET = "movielens-100k"


# --------------------------------------------------------------------------- store


def version(name: str) -> str:
    """The dataset's content version: a re-import of other data changes it (and so every
    cache key below), a re-import of the same data does not."""
    from core import artefacts

    return artefacts.dataset_version(name)


@st.cache_resource(show_spinner=False, max_entries=16)
def _database(name: str, version: str) -> duckdb.DuckDBPyConnection:
    return store.connect(name, read_only=True)


def _cursor(name: str) -> duckdb.DuckDBPyConnection:
    # A DuckDB connection is not safe across threads (one per browser session); a cursor
    # is a cheap, separate connection to the same read-only database.
    return store.cursor(_database(name, version(name)))


@st.cache_data(show_spinner=False, ttl=10)
def _dataset_names(folder: str) -> list[str]:
    return store.list_dataset_names()


def dataset_names() -> list[str]:
    """Datasets in the data folder (re-listed every 10 s, and at once after an upload)."""
    return _dataset_names(str(store.data_dir()))


@st.cache_data(show_spinner=False, max_entries=16)
def _info(name: str, version: str) -> dict:
    with _cursor(name) as con:
        return store.dataset_info(con)


def info(name: str) -> dict:
    return _info(name, version(name))


@st.cache_data(show_spinner=False, max_entries=8)
def _items(name: str, version: str) -> pd.DataFrame:
    with _cursor(name) as con:
        return store.load_items(con)


def items(name: str) -> pd.DataFrame:
    """The catalogue in item_idx order."""
    return _items(name, version(name))


@st.cache_data(show_spinner=False, max_entries=8)
def _users(name: str, version: str) -> pd.DataFrame:
    with _cursor(name) as con:
        return store.load_users(con)


def users(name: str) -> pd.DataFrame:
    return _users(name, version(name))


@st.cache_data(show_spinner=False, max_entries=256)
def _user_events(name: str, version: str, user_id: str) -> pd.DataFrame:
    with _cursor(name) as con:
        return store.load_user_events(con, user_id)


def user_events(name: str, user_id: str) -> pd.DataFrame:
    """One user's events in order with title and categories (raises UnknownUser)."""
    return _user_events(name, version(name), str(user_id))


@st.cache_data(show_spinner=False, max_entries=8)
def _ground_truth(name: str, version: str) -> pd.DataFrame:
    with _cursor(name) as con:
        return store.load_ground_truth(con)


def ground_truth(name: str) -> pd.DataFrame:
    return _ground_truth(name, version(name))


@st.cache_data(show_spinner=False, max_entries=8)
def _user_labels(name: str, version: str) -> pd.DataFrame:
    with _cursor(name) as con:
        return store.load_user_labels(con)


def user_labels(name: str) -> pd.DataFrame:
    return _user_labels(name, version(name))


@st.cache_data(show_spinner=False, max_entries=8)
def _category_counts(name: str, version: str) -> pd.DataFrame:
    with _cursor(name) as con:
        return store.category_counts(con)


def category_counts(name: str) -> pd.DataFrame:
    return _category_counts(name, version(name))


@st.cache_resource(show_spinner=False, max_entries=4)
def _event_arrays(name: str, version: str) -> store.EventArrays:
    with _cursor(name) as con:
        return store.load_event_arrays(con)


def event_arrays(name: str) -> store.EventArrays:
    """All events in CSR layout (shared; never mutate)."""
    return _event_arrays(name, version(name))


@st.cache_data(show_spinner=False, max_entries=256)
def _composition(name: str, version: str, user_id: str, window: int) -> pd.DataFrame:
    from core.composition import category_composition

    return category_composition(_user_events(name, version, user_id)["categories"].tolist(), window=window)


def composition(name: str, user_id: str, window: int) -> pd.DataFrame:
    """Category shares over one user's events (trailing window), rows = event index."""
    return _composition(name, version(name), str(user_id), int(window))


def import_uploads(name: str, events_file, items_file, delimiter: str = ",") -> store.ImportReport:
    """Run uploaded files through the same validated, atomic importer as the CLI."""
    from core.ingest import ingest_files

    store.check_name(name)
    with tempfile.TemporaryDirectory() as tmp:
        sources = []
        for upload in (events_file, items_file):
            # The upload's own name is used only as a label in error messages; the file on
            # disk gets a fixed name with the upload's suffix so parquet/csv is recognised.
            suffix = ".parquet" if upload.name.lower().endswith((".parquet", ".pq")) else ".csv"
            path = Path(tmp) / f"{len(sources)}{suffix}"
            path.write_bytes(upload.getvalue())
            sources.append(store.TableSource(path, delimiter=delimiter, display_name=upload.name))
        report = ingest_files(name, sources[0], sources[1])
    _dataset_names.clear()
    return report


# --------------------------------------------------------------------------- shared selection


def _remember(key: str) -> None:
    # Widget state is dropped when a page without that widget runs, so the choice is
    # copied into a plain session key that survives page switches.
    st.session_state[key] = st.session_state[f"_widget_{key}"]


def _leave_legacy_pages_mode() -> None:
    # Streamlit (1.67) starts every server in its legacy "pages/ folder" mode and only
    # switches to st.navigation once app.py has run: a first visitor arriving on a deep link
    # (/timeline) would get the folder's page list and no app-wide settings, and so would
    # every later session until someone opens the root. Switch at once and rerun through
    # the router (streamlit/streamlit#10276 discusses the behaviour).
    from streamlit.runtime.pages_manager import PagesManager

    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()


def choose_dataset() -> str | None:
    """The dataset chooser in the sidebar; the choice is shared by every page."""
    _leave_legacy_pages_mode()
    names = dataset_names()
    if not names:
        st.warning(
            f"No datasets under `{store.data_dir()}`. Create the default one with "
            "`python -m core ingest movielens-100k`, or upload files on the Overview page."
        )
        return None
    state = st.session_state
    if "dataset" not in state:
        wanted = st.query_params.get("dataset")
        state["dataset"] = (
            wanted if wanted in names else (DEFAULT_DATASET if DEFAULT_DATASET in names else names[0])
        )
    if state["dataset"] not in names:
        state["dataset"] = names[0]
    state["_widget_dataset"] = state["dataset"]
    name = st.sidebar.selectbox(
        "Dataset",
        names,
        key="_widget_dataset",
        on_change=_remember,
        args=("dataset",),
        help="Built-in MovieLens-100K, the synthetic world, or any imported dataset.",
    )
    st.query_params["dataset"] = name
    return name


def choose_user(name: str, ranked: list[str] | None = None) -> str:
    """User picker (type to search by id); ``ranked`` adds a "next most shifted user" button."""
    ids = users(name)["user_id"].tolist()
    state = st.session_state
    key = f"user:{name}"
    if key not in state:
        wanted = st.query_params.get("user")
        state[key] = wanted if wanted in ids else (ranked[0] if ranked else ids[0])
    if state[key] not in ids:
        state[key] = ids[0]
    if ranked:

        def next_shifted() -> None:
            current = state[key]
            pos = ranked.index(current) + 1 if current in ranked else 0
            state[key] = ranked[pos % len(ranked)]

        st.sidebar.button("Next most shifted user", on_click=next_shifted, icon=":material/skip_next:")
    state["_widget_" + key] = state[key]
    user = st.sidebar.selectbox(
        "User",
        ids,
        key="_widget_" + key,
        on_change=_remember,
        args=(key,),
        help="Type to search by user id.",
    )
    st.query_params["user"] = user
    return user


def set_user(name: str, user_id: str) -> None:
    """Select a user for every page (used by tables that link to the timeline)."""
    st.session_state[f"user:{name}"] = str(user_id)


def show_error(err: ShiftError) -> None:
    st.error(str(err), icon=":material/error:")


def as_int_array(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


# --------------------------------------------------------------------------- embeddings


class _NotEmbedded(Exception):
    """Raised inside cached loaders so that a missing artefact is not cached as ``None``."""


@st.cache_resource(show_spinner=False, max_entries=4)
def _item_matrix(name: str, version: str) -> np.ndarray:
    from core.artefacts import cached_item_matrix

    matrix = cached_item_matrix(name)
    if matrix is None:
        raise _NotEmbedded(name)
    matrix.setflags(write=False)  # shared by every session: make accidental writes fail loudly
    return matrix


def item_matrix(name: str) -> np.ndarray | None:
    """The cached item embeddings (row i = item_idx i), or None if never encoded. Never encodes."""
    try:
        return _item_matrix(name, version(name))
    except _NotEmbedded:
        return None


@st.cache_resource(show_spinner="Loading the language model…")
def _encoder():
    from core.encoder import Encoder

    return Encoder().load()


def encode_items(name: str) -> None:
    """Encode a dataset's items with the shared encoder, driving an ``st.progress`` bar.

    Only ever run on an explicit click: page requests themselves never encode.
    """
    from core.artefacts import item_matrix as encode_item_matrix

    bar = st.progress(0.0, text="Encoding item texts…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"Encoding item texts… {done:,} of {total:,}")

    encode_item_matrix(name, encoder=_encoder(), progress=progress)
    bar.empty()
    _item_matrix.clear()


def require_item_matrix(name: str) -> np.ndarray:
    """The item matrix, or stop the page with a button (and the command) that makes it."""
    matrix = item_matrix(name)
    if matrix is None:
        st.info(
            f"The items of `{name}` have not been encoded yet. Encode them here, or run "
            f"`python -m core encode {name}` once; vectors are cached, so this happens once.",
            icon=":material/info:",
        )
        # The click is kept in session state (a callback), not in the button's return value,
        # which a rerun at the start of the script (see _leave_legacy_pages_mode) would drop.
        flag = f"encode_requested:{name}"
        st.button(
            "Encode items now",
            key=f"encode:{name}",
            type="primary",
            on_click=st.session_state.__setitem__,
            args=(flag, True),
        )
        if st.session_state.pop(flag, False):
            encode_items(name)
            st.rerun()
        st.stop()
    return matrix


# --------------------------------------------------------------------------- recommendations


@st.cache_resource(show_spinner="Fitting the recommender…", max_entries=4)
def _recommender(name: str, version: str):
    from core import artefacts

    return artefacts.recommender(name, _item_matrix(name, version))


@st.cache_resource(show_spinner="Fitting the explainer…", max_entries=4)
def _explainer(name: str, version: str):
    from core.explain import ShiftExplainer

    return ShiftExplainer().fit(_items(name, version), _item_matrix(name, version))


@st.cache_data(show_spinner=False, max_entries=256)
def _recommendations(name: str, version: str, user_id: str, change_point: int, k: int, source: str):
    from core.recommend import recommend_for_user

    history = _user_events(name, version, user_id)["item_idx"].to_numpy()
    return recommend_for_user(
        _recommender(name, version),
        _items(name, version),
        user_id,
        history,
        change_point,
        k=k,
        change_point_source=source,
    )


def recommendations(name: str, user_id: str, change_point: int, k: int = 10, source: str = "given"):
    """Before/after/now tables (core.recommend.UserRecommendations) for one change point."""
    return _recommendations(name, version(name), str(user_id), int(change_point), int(k), source)


@st.cache_data(show_spinner=False, max_entries=256)
def _explanation(name: str, version: str, user_id: str, change_point: int):
    history = _user_events(name, version, user_id)["item_idx"].to_numpy()
    return _explainer(name, version).explain(history, change_point)


def explanation(name: str, user_id: str, change_point: int):
    """What changed at the change point (core.explain.ShiftExplanation)."""
    return _explanation(name, version(name), str(user_id), int(change_point))


# --------------------------------------------------------------------------- text


_MARKDOWN_SPECIAL = "\\`*_{}[]()<>#+-.!|~$:"


def md_escape(text: str) -> str:
    """Data text made inert inside st.markdown (no links, emphasis, HTML or LaTeX)."""
    return "".join("\\" + c if c in _MARKDOWN_SPECIAL else c for c in str(text))


# --------------------------------------------------------------------------- detection


@st.cache_resource(
    show_spinner="Fitting the detector over every user (once per dataset and detector)…", max_entries=8
)
def _fitted(name: str, version: str, detector: str):
    """core.detectors.population.PopulationFit, from the disk cache or fitted now (shared;
    never mutated). The slider only calls its cheap predict."""
    from core import artefacts

    return artefacts.fitted_detector(name, detector, _item_matrix(name, version))


def detector_names() -> list[str]:
    from core import detectors

    return detectors.detector_names()


def default_detector() -> str:
    from core import detectors

    return detectors.DEFAULT


@st.cache_data(show_spinner=False, max_entries=32)
def _user_ranking(name: str, version: str, detector: str) -> pd.DataFrame:
    """Users by their strongest candidate change (threshold-free, so it survives slider moves)."""
    fit = _fitted(name, version, detector)
    cand = fit.result.candidates
    if len(cand) == 0:
        return pd.DataFrame({"user_id": pd.Series(dtype=str), "max_score": pd.Series(dtype=float)})
    best = pd.DataFrame({"user": cand.user, "score": cand.score}).groupby("user")["score"].max()
    best = best.sort_values(ascending=False, kind="stable")
    return pd.DataFrame({"user_id": fit.events.user_ids[best.index.to_numpy()], "max_score": best.to_numpy()})


@st.cache_data(show_spinner=False, max_entries=64)
def _population_change_points(name: str, version: str, detector: str, threshold: float) -> pd.DataFrame:
    from core.detectors.population import change_points

    return change_points(_fitted(name, version, detector), threshold)


def user_signal(name: str, detector: str, user_id: str) -> np.ndarray:
    """The fitted detector's per-event score for one user (NaN where undefined). Read-only view."""
    fit = _fitted(name, version(name), detector)
    return fit.result.scores[fit.events.user_slice(fit.user_position(user_id))]


def user_change_points(name: str, detector: str, threshold: float, user_id: str) -> pd.DataFrame:
    """One user's change points at ``threshold``: event_index, score, alert_index, timestamp.

    Only this user's candidates are filtered (or, for detectors whose change points depend
    on the threshold beyond a filter, only this user is re-run), so a slider move is cheap.
    """
    from core.detectors.population import user_signal as population_user_signal

    fit = _fitted(name, version(name), detector)
    return population_user_signal(fit, user_id, threshold).change_points


def _slider_range(name: str, version: str, detector: str) -> tuple[float, float, float]:
    fit = _fitted(name, version, detector)
    cand = fit.result.candidates
    finite = fit.calibration.thresholds[np.isfinite(fit.calibration.thresholds)]
    top = float(max(np.nanmax(cand.score) if len(cand) else 0.0, finite.max() if len(finite) else 0.0, 1e-6))
    step = float(10 ** np.floor(np.log10(top / 200)))
    return 0.0, float(np.ceil(top / step) * step), step


def detection_controls(name: str) -> Detection:
    """Sidebar: detector selector and the ε slider, also settable as false alarms per 1,000
    events. The choice is shared by every page. Stops the page when items are not encoded."""
    require_item_matrix(name)
    v = version(name)
    state = st.session_state
    names = detector_names()
    det_key = f"detector:{name}"
    if det_key not in state or state[det_key] not in names:
        state[det_key] = default_detector()
    state["_widget_" + det_key] = state[det_key]
    detector = st.sidebar.selectbox(
        "Detector",
        names,
        key="_widget_" + det_key,
        on_change=_remember,
        args=(det_key,),
        help=f"Default: {default_detector()} (chosen on the ground-truth benchmark).",
    )
    fit = _fitted(name, v, detector)
    cal = fit.calibration
    lo, hi, step = _slider_range(name, v, detector)
    eps_key = f"eps:{name}:{detector}"
    if eps_key not in state:
        try:
            state[eps_key] = min(fit.default_threshold, hi)  # the calibrated default
        except ShiftError:
            state[eps_key] = hi
        if not np.isfinite(state[eps_key]):
            # No null history was long enough for the detector's windows: nothing to calibrate.
            state[eps_key] = hi
    state[eps_key] = float(np.clip(round(state[eps_key] / step) * step, lo, hi))

    mode = st.sidebar.radio(
        "Set the threshold as",
        ["ε (score)", "false alarms per 1,000 events"],
        key="threshold_mode",
        horizontal=True,
    )
    if mode.startswith("ε"):
        state["_widget_" + eps_key] = state[eps_key]
        threshold = st.sidebar.slider(
            "ε",
            lo,
            hi,
            step=step,
            key="_widget_" + eps_key,
            on_change=_remember,
            args=(eps_key,),
            help="A change point is a score peak at or above ε.",
        )
    else:
        rate = st.sidebar.slider(
            "Expected false alarms per 1,000 events",
            0.0,
            20.0,
            value=float(min(round(cal.false_alarms_at(state[eps_key]), 1), 20.0)),
            step=0.1,
            key=f"_rate:{name}:{detector}",
            help="Measured on shuffled histories (no shift by construction).",
        )
        try:
            threshold = state[eps_key] = float(min(cal.threshold_for(rate), hi))
        except ShiftError as err:
            show_error(err)
            threshold = state[eps_key]
        st.sidebar.caption(f"ε = {threshold:.4g}")
    rate_now = cal.false_alarms_at(threshold)
    st.sidebar.caption(
        f"At ε = {threshold:.4g}: about {rate_now:.2f} false alarms per 1,000 events "
        "(measured on shuffled histories)."
    )
    return Detection(
        name=name,
        detector=detector,
        threshold=float(threshold),
        false_alarms=rate_now,
        online=bool(getattr(fit.detector, "online", False)),
        ranking=_user_ranking(name, v, detector),
    )


@dataclass(frozen=True)
class Detection:
    """The shared detection settings of a page run, and cheap accessors around them."""

    name: str
    detector: str
    threshold: float
    false_alarms: float
    online: bool
    ranking: pd.DataFrame  # user_id, max_score: users by their strongest candidate change

    @property
    def ranked_users(self) -> list[str]:
        return self.ranking["user_id"].tolist()

    def change_points(self) -> pd.DataFrame:
        """Every user's change points at this threshold."""
        return _population_change_points(self.name, version(self.name), self.detector, self.threshold)

    def user_change_points(self, user_id: str) -> pd.DataFrame:
        return user_change_points(self.name, self.detector, self.threshold, user_id)

    def user_signal(self, user_id: str) -> np.ndarray:
        return user_signal(self.name, self.detector, user_id)


def change_point_choices(name: str, user_id: str, detection: Detection | None) -> list[tuple[str, int]]:
    """Change points to explain/recommend around: detected ones (strongest first), then planted ones."""
    choices = []
    if detection is not None:
        detected = detection.user_change_points(user_id).sort_values("score", ascending=False, kind="stable")
        for row in detected.itertuples():  # strongest first: the default is the clearest shift
            choices.append(
                (f"detected at event {row.event_index} (score {row.score:.3g})", int(row.event_index))
            )
    truth = ground_truth(name)
    for idx in truth.loc[truth["user_id"] == str(user_id), "event_index"]:
        choices.append((f"planted at event {int(idx)}", int(idx)))
    return choices


# --------------------------------------------------------------------------- projection


@st.cache_data(show_spinner=False, max_entries=4)
def _projection(name: str, version: str, mtime: float) -> np.ndarray | None:
    from core.artefacts import cached_projection

    return cached_projection(name, _item_matrix(name, version))


def projection(name: str) -> np.ndarray | None:
    """The stored UMAP map of the items (None until ``python -m core project NAME`` ran)."""
    from core.artefacts import projection_path

    path = projection_path(name)
    if not path.exists() or item_matrix(name) is None:
        return None
    return _projection(name, version(name), path.stat().st_mtime)


@st.cache_data(show_spinner=False, max_entries=16)
def _shift_endpoints(name: str, version: str, detector: str, threshold: float, limit: int):
    from core.projection import place, segment_means

    cps = _population_change_points(name, version, detector, threshold)
    strongest = (
        cps.sort_values("score", ascending=False, kind="stable").drop_duplicates("user_id").head(limit)
    )
    matrix = _item_matrix(name, version)
    coords = _projection(name, version, _projection_mtime(name))
    ev = _event_arrays(name, version)
    means = [
        segment_means(matrix, ev.item_idx[ev.user_slice(ev.users.position(r.user_id))], r.event_index)
        for r in strongest.itertuples()
    ]
    if not means:
        return strongest, np.empty((0, 2)), np.empty((0, 2))
    stacked = np.vstack(means)
    placed = place(stacked, matrix, coords)
    return strongest, placed[0::2], placed[1::2]


def _projection_mtime(name: str) -> float:
    from core.artefacts import projection_path

    return projection_path(name).stat().st_mtime


def shift_endpoints(detection: Detection, limit: int = 300):
    """Strongest change point of up to ``limit`` users, and their interest before/after on the map."""
    return _shift_endpoints(
        detection.name, version(detection.name), detection.detector, detection.threshold, limit
    )


# --------------------------------------------------------------------------- evaluation


@st.cache_data(show_spinner=False, max_entries=16)
def _candidates_frame(name: str, version: str, detector: str) -> pd.DataFrame:
    """Every candidate change point (a threshold only filters these), with user ids."""
    fit = _fitted(name, version, detector)
    cand = fit.result.candidates
    return pd.DataFrame(
        {
            "user_id": fit.events.user_ids[cand.user],
            "event_index": cand.event_index.astype(np.int64),
            "alert_index": cand.alert_index.astype(np.int64),
            "score": cand.score.astype(np.float64),
        }
    )


@st.cache_data(show_spinner="Scoring against the planted truth…", max_entries=16)
def _truth_sweep(name: str, version: str, detector: str, margin: int) -> pd.DataFrame:
    from core.benchmark.planted import threshold_grid, threshold_sweep

    cand = _candidates_frame(name, version, detector)
    users_df = _users(name, version)
    return threshold_sweep(
        _ground_truth(name, version),
        _user_labels(name, version),
        cand,
        users_df.set_index("user_id")["n_events"],
        threshold_grid(cand["score"].to_numpy()),
        margin,
    )


def truth_sweep(detection: Detection, margin: int = 10) -> pd.DataFrame:
    """Precision/recall/F1 and false alarms vs threshold on the dataset's planted truth
    (peak detectors only: their change points at t are the candidates scoring >= t)."""
    return _truth_sweep(detection.name, version(detection.name), detection.detector, margin)


def truth_scores(detection: Detection, margin: int = 10) -> dict:
    """Scores of the change points on screen (at the current ε) against the planted truth."""
    from core.benchmark.planted import score_detections

    name = detection.name
    users_df = users(name)
    return score_detections(
        ground_truth(name),
        user_labels(name),
        detection.change_points(),
        users_df.set_index("user_id")["n_events"],
        margin,
    )


RECORDED_RESULTS = Path(__file__).resolve().parent / "bench" / "results"


def evaluation_folder(name: str) -> Path | None:
    """Where ``python -m core evaluate NAME`` wrote its results: the dataset's cache folder
    (the command's default), else the benchmark recorded in the repository (bench/results)."""
    for folder in (store.cache_dir(name) / "evaluation", RECORDED_RESULTS / store.check_name(name)):
        if (folder / "results.json").exists():
            return folder
    return None


@st.cache_data(show_spinner=False, max_entries=8)
def _stored_evaluation(folder: str, mtime: float):
    import json

    payload = json.loads((Path(folder) / "results.json").read_text(encoding="utf-8"))
    curves_path = Path(folder) / "pr_curves.csv"
    curves = pd.read_csv(curves_path) if curves_path.exists() else pd.DataFrame()
    return payload.get("meta", {}), pd.DataFrame(payload["rows"]), curves


def stored_evaluation(name: str):
    """(meta, table, curves, folder) written by ``python -m core evaluate NAME``, or None."""
    folder = evaluation_folder(name)
    if folder is None:
        return None
    return (*_stored_evaluation(str(folder), (folder / "results.json").stat().st_mtime), folder)
