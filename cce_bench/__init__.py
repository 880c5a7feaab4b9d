"""cce-bench: benchmarks of saliency-map explanations, starting with the tables of the CCE paper."""
from .api import explain, insertion_deletion
from .errors import UserError
from .explainers import EXPLAINERS, create_explainer
from .models import MODELS, PixelInput, create_model

__version__ = "0.1.0"

__all__ = ["EXPLAINERS", "MODELS", "PixelInput", "UserError", "create_explainer", "create_model", "explain",
           "insertion_deletion", "__version__"]
