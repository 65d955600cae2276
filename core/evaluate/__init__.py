"""Evaluate a trained checkpoint on the test split: everything the Evaluation page shows (no Streamlit).

Modules, one job each (their docstrings hold the formulas and conventions):
    predictions  load a model from a checkpoint, run inference through the engine's own `infer`,
                 `Predictions` (class, probabilities, loss per image), cached per checkpoint version.
    metrics      confusion matrix, per-class accuracy / precision / recall / F1 (`Summary`),
                 most-confused pairs, the misclassified-image query, top-k.
    replay       the tutorial MLP replayed in the hand-written numpy network (core.numpy_net).
    upload       an uploaded PNG/JPEG -> the 32x32 image the model sees -> its top classes.

Imports core.data, core.train, core.numpy_net, core.atomic_file; never core.runs or Streamlit.
"""
from core.evaluate.metrics import (SORT_KEYS, ConfusedPair, MisclassifiedPage, Summary, misclassified, summarize,
                                   top_k)
from core.evaluate.predictions import LoadedModel, Predictions, cache_path, load_model, predictions_for_checkpoint
from core.evaluate.replay import ReplayReport, numpy_replay
from core.evaluate.upload import (MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS, UPLOAD_EXTENSIONS, UploadPrediction, limit_text,
                                  limits_text, predict_image)

__all__ = [
    "MAX_UPLOAD_BYTES", "MAX_UPLOAD_PIXELS", "SORT_KEYS", "limit_text", "limits_text", "UPLOAD_EXTENSIONS", "ConfusedPair", "LoadedModel", "MisclassifiedPage",
    "Predictions", "ReplayReport", "Summary", "UploadPrediction", "cache_path", "load_model", "misclassified",
    "numpy_replay", "predict_image", "predictions_for_checkpoint", "summarize", "top_k",
]
