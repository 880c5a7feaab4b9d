from .class_sensitivity import class_deviation, other_classes
from .insertion_deletion import InsertionDeletion, auc, blur, insertion_deletion, saliency_ranks
from .pointing_game import contrastive_share, energy_pointing_game

__all__ = ["InsertionDeletion", "auc", "blur", "class_deviation", "contrastive_share", "energy_pointing_game",
           "insertion_deletion", "other_classes", "saliency_ranks"]
