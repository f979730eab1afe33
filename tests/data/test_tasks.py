"""Label tasks: definitions from the facts files and the config, their errors, and their labels in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from physiosync.config import ConfigError, load_config, resolve_config
from physiosync.data.labels import (
    FOUR_CLASS_NAMES,
    Task,
    dataset_tasks,
    make_four_labels,
    make_labels,
    task_labels,
)

DREAMER_DOM3 = ["dataset.name=dreamer",
                "tasks={dom3: {kind: categorical, columns: [dominance], classes: {low: [1, 2], mid: [3], high: [4, 5]}}}"]


def test_facts_define_the_paper_tasks_and_the_other_ratings():
    deap, dreamer = dataset_tasks("deap"), dataset_tasks("dreamer")
    assert list(deap) == ["arousal", "valence", "four", "dominance", "liking"]
    assert list(dreamer) == ["arousal", "valence", "four", "dominance"]
    for tasks in (deap, dreamer):
        assert tasks["four"] == Task("four", "quadrants", ("arousal", "valence"), FOUR_CLASS_NAMES)
        assert tasks["arousal"] == Task("arousal", "threshold", ("arousal",), ("low", "high"))
        assert tasks["dominance"].columns == ("dominance",) and tasks["dominance"].n_classes == 2
    assert deap["liking"].column == "label_liking"


@pytest.mark.parametrize(("dataset", "t"), [("deap", 5.0), ("dreamer", 3.0)])
def test_every_rating_has_its_facts_threshold(dataset, t):
    cfg = resolve_config(load_config(overrides=[f"dataset.name={dataset}"]))
    ratings = ["valence", "arousal", "dominance"] + (["liking"] if dataset == "deap" else [])
    assert cfg.preprocess.thresholds == dict.fromkeys(ratings, t)
    # a config threshold replaces one rating's only
    cfg = resolve_config(load_config(overrides=[f"dataset.name={dataset}", "preprocess.thresholds={dominance: 2}"]))
    assert cfg.preprocess.thresholds["dominance"] == 2.0 and cfg.preprocess.thresholds["valence"] == t


def test_config_tasks_add_and_override_and_are_saved_resolved():
    cfg = resolve_config(load_config(overrides=[
        *DREAMER_DOM3, "labels=[dom3, four]"]))
    assert list(cfg.tasks) == ["arousal", "valence", "four", "dominance", "dom3"]
    assert cfg.tasks["dom3"].class_names == ["low", "mid", "high"]  # filled from the classes
    assert resolve_config(cfg) == cfg  # idempotent: a saved config.yaml resolves to itself
    # an override replaces the facts' task of that name, in its place
    cfg = resolve_config(load_config(overrides=[
        "tasks={four: {kind: quadrants, columns: [valence, arousal], class_names: [a, b, c, d]}}"]))
    assert list(cfg.tasks)[:3] == ["arousal", "valence", "four"] and cfg.tasks["four"].columns == ["valence", "arousal"]


@pytest.mark.parametrize(("overrides", "fragments"), [
    (["labels=[happiness]"], ["key 'labels'", "unknown label task(s) happiness", "arousal, valence, four, dominance, liking"]),
    (["dataset.name=dreamer", "labels=[liking]"], ["unknown label task(s) liking", "dreamer defines"]),
    (["preprocess.thresholds={pleasure: 5}"], ["preprocess.thresholds.pleasure", "valence, arousal, dominance, liking"]),
    (["tasks={x: {kind: threshold, columns: [pleasure]}}"], ["tasks.x.columns", "pleasure is not a deap rating"]),
    (["tasks={x: {kind: threshold, columns: [valence, arousal]}}"], ["tasks.x.columns", "exactly 1 column"]),
    (["tasks={x: {kind: quadrants, columns: [valence]}}"], ["tasks.x.columns", "exactly 2 column"]),
    (["tasks={x: {kind: quadrants, columns: [valence, valence]}}"], ["tasks.x.columns", "duplicate"]),
    (["tasks={x: {kind: threshold, columns: [valence], class_names: [a, b, c]}}"], ["tasks.x.class_names", "2 classes"]),
    (["tasks={x: {kind: categorical, columns: [valence]}}"], ["tasks.x.classes", "needs classes"]),
    (["tasks={x: {kind: categorical, columns: [valence], classes: {a: [1], b: [1, 2]}}}"],
     ["tasks.x.classes", "value 1 belongs to both 'a' and 'b'"]),
    (["tasks={x: {kind: categorical, columns: [valence], classes: {a: [1]}}}"], ["tasks.x.classes"]),
    (["tasks={x: {kind: categorical, columns: [valence], classes: {a: [1], b: [2]}, class_names: [b, a]}}"],
     ["tasks.x.class_names", "must equal the names of classes"]),
    (["tasks={x: {kind: ranking, columns: [valence]}}"], ["tasks.x.kind"]),
    (["tasks={Bad-Name: {kind: threshold, columns: [valence]}}"], ["tasks.Bad-Name", "task name"]),
    (["tasks={x: {kind: threshold, columns: [valence], threshold: 4}}"], ["unknown key 'tasks.x.threshold'"]),
])
def test_bad_task_settings_are_config_errors_naming_the_key(overrides, fragments):
    with pytest.raises(ConfigError) as e:
        load_config(overrides=overrides)
    for fragment in fragments:
        assert fragment in str(e.value), str(e.value)


def test_resolve_config_checks_labels_for_the_dataset_it_resolves():
    """The dataset can change after loading (``prepare --dataset``): resolving checks again."""
    cfg = load_config(overrides=["labels=[liking]"])
    cfg.dataset.name = "dreamer"
    with pytest.raises(ConfigError, match=r"labels: unknown label task\(s\) liking; dreamer defines"):
        resolve_config(cfg)


def test_threshold_and_quadrant_labels_closed_form():
    rng = np.random.default_rng(0)
    r = {k: rng.choice([1.0, 2.5, 3.0, 5.0, 7.0, 9.0], size=300) for k in ("valence", "arousal", "dominance", "liking")}
    thr = {"valence": 5.0, "arousal": 3.0, "dominance": 7.0, "liking": 2.5}
    tasks = dataset_tasks("deap")
    labels = make_labels(r, tasks, thr)
    assert sorted(labels) == ["label_arousal", "label_dominance", "label_four", "label_liking", "label_valence"]
    for name in ("valence", "arousal", "dominance", "liking"):
        assert np.array_equal(labels[f"label_{name}"], (r[name] >= thr[name]).astype(np.int64))
    # quadrant index = 2 * low(first) + low(second); on (arousal, valence) that is HAHV, HALV, LAHV, LALV
    low_a, low_v = (r["arousal"] < thr["arousal"]).astype(int), (r["valence"] < thr["valence"]).astype(int)
    assert np.array_equal(labels["label_four"], 2 * low_a + low_v)
    other = Task("dl", "quadrants", ("dominance", "liking"), ("HH", "HL", "LH", "LL"))
    low_d, low_l = (r["dominance"] < 7.0).astype(int), (r["liking"] < 2.5).astype(int)
    assert np.array_equal(task_labels(other, r, thr), 2 * low_d + low_l)


def test_d8_tie_quirk_acts_on_the_quadrants_task_exactly_as_make_four_labels():
    grid = np.array([1.0, 4.0, 5.0, 6.0, 9.0])
    v, a = (x.reshape(-1) for x in np.meshgrid(grid, grid))
    thr = {"valence": 5.0, "arousal": 5.0}
    four = dataset_tasks("deap")["four"]
    for bug in (False, True):
        assert np.array_equal(task_labels(four, {"valence": v, "arousal": a}, thr, four_tie_bug=bug),
                              make_four_labels(v, a, thr, four_tie_bug=bug))
    quirk = task_labels(four, {"valence": v, "arousal": a}, thr, four_tie_bug=True)
    fixed = task_labels(four, {"valence": v, "arousal": a}, thr, four_tie_bug=False)
    # the quirk: class 3 (LALV) wherever both ratings are <= 5, ties included; elsewhere the fixed rule
    assert np.array_equal(quirk, np.where((a <= 5) & (v <= 5), 3, fixed))
    # it never touches a threshold task
    arousal = dataset_tasks("deap")["arousal"]
    assert np.array_equal(task_labels(arousal, {"arousal": a}, thr, four_tie_bug=True), (a >= 5).astype(np.int64))


def test_categorical_labels_map_values_to_classes_and_refuse_others():
    cfg = resolve_config(load_config(overrides=[*DREAMER_DOM3, "labels=[dom3]"]))
    dom3 = dataset_tasks("dreamer", cfg.tasks)["dom3"]
    assert (dom3.kind, dom3.class_names, dom3.values) == ("categorical", ("low", "mid", "high"),
                                                          ((1.0, 2.0), (3.0,), (4.0, 5.0)))
    scores = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 3.0])
    assert task_labels(dom3, {"dominance": scores}, {}).tolist() == [0, 0, 1, 2, 2, 1]
    with pytest.raises(ValueError, match=r"task 'dom3', column 'dominance': values \[2\.5\] belong to no class"):
        task_labels(dom3, {"dominance": np.array([1.0, 2.5])}, {})
    assert Task.from_dict("dom3", dom3.to_dict()) == dom3  # the manifest's form reads back
