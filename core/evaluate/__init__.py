"""Evaluate a trained checkpoint on the test split: everything the Evaluation page shows (no Streamlit).

Modules, one job each (their docstrings hold the formulas and conventions):
    predictions  load a model from a checkpoint, run inference through the engine's own `infer`,
                 `Predictions` (class, probabilities, loss per image), cached per checkpoint version.
    metrics      confusion matrix, per-class accuracy / precision / recall / F1 (`Summary`),
                 most-confused pairs, the misclassified-image query, top-k.
    replay       the tutorial MLP replayed in the hand-written numpy network (core.numpy_net).
    upload       an uploaded PNG/JPEG -> the 32x32 image the model sees -> its top classes.
    history      the run's predictions epoch by epoch (core.train.history's file): the scrubber's
                 summaries, per-class accuracy over epochs, learned / forgotten / changed images.
    saliency     where the model looks: Grad-CAM / LayerCAM (conv nets), gradient x input (MLP).
    features     penultimate-layer features of the test split and their 2-D PCA map, cached.
    learned      what the weights show: MLP first-layer units as pictures (ordered by norm or class drive),
                 each class's gradient-ascent pattern, conv-net stem filters and activation maps.

Imports core.data, core.train, core.numpy_net, core.atomic_file; never core.runs or Streamlit.
"""
from core.evaluate.metrics import (SORT_KEYS, ConfusedPair, MisclassifiedPage, Summary, misclassified, summarize,
                                   top_k)
from core.evaluate.predictions import LoadedModel, Predictions, cache_path, load_model, predictions_for_checkpoint
from core.evaluate.features import Projection, pca_2d, penultimate_features, projection_for_checkpoint
from core.evaluate.history import (HISTORY_FILTERS, PredictionHistory, Trajectories, epoch_summary, forgotten_per_class,
                                   load_history, per_class_over_epochs, trajectories)
from core.evaluate.learned import (ActivationGroup, Activations, ClassPatterns, StemFilters, UnitPictures,
                                   activation_maps, class_patterns, first_layer_filters, first_layer_units, unit_order)
from core.evaluate.replay import ReplayReport, numpy_replay
from core.evaluate.saliency import SaliencyMap, saliency_maps
from core.evaluate.upload import (MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS, UPLOAD_EXTENSIONS, UploadPrediction, limit_text,
                                  limits_text, predict_image)

__all__ = [
    "MAX_UPLOAD_BYTES", "MAX_UPLOAD_PIXELS", "SORT_KEYS", "limit_text", "limits_text", "UPLOAD_EXTENSIONS", "ConfusedPair", "LoadedModel", "MisclassifiedPage",
    "Predictions", "ReplayReport", "Summary", "UploadPrediction", "cache_path", "load_model", "misclassified",
    "numpy_replay", "predict_image", "predictions_for_checkpoint", "summarize", "top_k",
    "HISTORY_FILTERS", "PredictionHistory", "Projection", "SaliencyMap", "Trajectories", "epoch_summary",
    "forgotten_per_class", "load_history", "pca_2d", "penultimate_features", "per_class_over_epochs",
    "projection_for_checkpoint", "saliency_maps", "trajectories",
    "ActivationGroup", "Activations", "ClassPatterns", "StemFilters", "UnitPictures", "activation_maps",
    "class_patterns", "first_layer_filters", "first_layer_units", "unit_order",
]
