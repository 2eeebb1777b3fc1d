"""Models: registry, architectures, front ends, checkpoint I/O and the Predictor."""
from .errors import InputError, ModelUnavailable
from .factory import load_predictor
from .registry import TASKS, model_ids, parse_model_id

__all__ = ["load_predictor", "TASKS", "model_ids", "parse_model_id", "InputError", "ModelUnavailable"]
