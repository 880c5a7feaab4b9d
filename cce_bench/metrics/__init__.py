from .insertion_deletion import InsertionDeletion, auc, blur, insertion_deletion, saliency_ranks
from .pointing_game import energy_pointing_game

__all__ = ["InsertionDeletion", "auc", "blur", "energy_pointing_game", "insertion_deletion", "saliency_ranks"]
